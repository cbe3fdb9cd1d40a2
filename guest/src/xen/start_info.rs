//! `struct start_info` (Xen public `xen.h`), as a 64-bit PV guest sees it.

/// Flag: the domain is privileged.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// Flag: this is the initial (hardware/control) domain, dom0.
pub const SIF_INITDOMAIN: u32 = 1 << 1;

/// Guest command-line size in `start_info`.
pub const MAX_GUEST_CMDLINE: usize = 1024;

#[repr(C)]
pub struct StartInfo {
    pub magic: [u8; 32],
    pub nr_pages: u64,
    /// Machine address of the shared info page.
    pub shared_info: u64,
    pub flags: u32,
    pub store_mfn: u64,
    pub store_evtchn: u32,
    /// domU: console page machine frame; dom0: console_info offset/size.
    pub console_mfn: u64,
    pub console_evtchn: u32,
    pub pt_base: u64,
    pub nr_pt_frames: u64,
    /// Virtual address of the pfn -> mfn table.
    pub mfn_list: u64,
    pub mod_start: u64,
    pub mod_len: u64,
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    pub first_p2m_pfn: u64,
    pub nr_p2m_frames: u64,
}

const _: () = {
    assert!(core::mem::offset_of!(StartInfo, shared_info) == 40);
    assert!(core::mem::offset_of!(StartInfo, flags) == 48);
    assert!(core::mem::offset_of!(StartInfo, store_mfn) == 56);
    assert!(core::mem::offset_of!(StartInfo, store_evtchn) == 64);
    assert!(core::mem::offset_of!(StartInfo, console_mfn) == 72);
    assert!(core::mem::offset_of!(StartInfo, console_evtchn) == 80);
    assert!(core::mem::offset_of!(StartInfo, pt_base) == 88);
    assert!(core::mem::offset_of!(StartInfo, mfn_list) == 104);
    assert!(core::mem::offset_of!(StartInfo, cmd_line) == 128);
    assert!(core::mem::size_of::<StartInfo>() == 1168);
};

impl StartInfo {
    pub fn is_dom0(&self) -> bool {
        self.flags & SIF_INITDOMAIN != 0
    }

    pub fn is_privileged(&self) -> bool {
        self.flags & SIF_PRIVILEGED != 0
    }

    /// The magic string, e.g. "xen-3.0-x86_64".
    pub fn magic_str(&self) -> &str {
        let end = self.magic.iter().position(|&b| b == 0).unwrap_or(32);
        core::str::from_utf8(&self.magic[..end]).unwrap_or("?")
    }

    /// The guest command line up to its first NUL.
    pub fn cmd_line_str(&self) -> &str {
        let end = self
            .cmd_line
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(MAX_GUEST_CMDLINE);
        core::str::from_utf8(&self.cmd_line[..end]).unwrap_or("")
    }
}

static START_INFO: core::sync::atomic::AtomicPtr<StartInfo> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

/// Records the `start_info` page Xen passed at entry.
///
/// # Safety
/// `si` must be the address Xen passed in rsi; the page stays mapped for
/// the domain's life.
pub unsafe fn set(si: *const StartInfo) {
    START_INFO.store(si.cast_mut(), core::sync::atomic::Ordering::Release);
}

/// The domain's `start_info`.
pub fn get() -> &'static StartInfo {
    let p = START_INFO.load(core::sync::atomic::Ordering::Acquire);
    assert!(!p.is_null(), "start_info used before entry");
    // SAFETY: set once at entry to Xen's start_info page, which is mapped
    // for the whole life of the domain and never written by the guest.
    unsafe { &*p }
}
