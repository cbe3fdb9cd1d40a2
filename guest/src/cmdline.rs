//! The guest command line: a mode word (`tests`, `demo`) and `key=value`
//! arguments (e.g. `mode=tests filter=send role=server peer=1`).

/// Parsed command line; borrows from start_info.
pub struct CmdLine<'a> {
    raw: &'a str,
    mode: &'a str,
}

impl<'a> CmdLine<'a> {
    /// The mode is the first bare word or `mode=`; `tests` if neither.
    pub fn parse(raw: &'a str) -> CmdLine<'a> {
        let mut c = CmdLine { raw, mode: "tests" };
        if let Some(m) = c.get("mode") {
            c.mode = m;
        } else if let Some(w) = raw.split_whitespace().find(|w| !w.contains('=')) {
            c.mode = w;
        }
        c
    }

    pub fn mode(&self) -> &'a str {
        self.mode
    }

    /// Value of the last `key=value` with this key.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.raw
            .split_ascii_whitespace()
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .next_back()
    }
}
