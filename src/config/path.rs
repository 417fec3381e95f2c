//! JSON paths built on the stack while walking a document, rendered only when
//! a problem is reported (`flags.new_checkout.percentage`, `flags["a.b"]`,
//! `flags.x.include[3]`).

use std::fmt::{self, Write as _};

#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub(crate) fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    fn write(&self, out: &mut String) {
        match *self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.write(out);
                let plain = !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if plain {
                    if !matches!(parent, Path::Root) {
                        out.push('.');
                    }
                    out.push_str(key);
                } else {
                    // Debug-quoting escapes quotes, control characters and the like.
                    let _ = write!(out, "[{key:?}]");
                }
            }
            Path::Index(parent, index) => {
                parent.write(out);
                let _ = write!(out, "[{index}]");
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if matches!(self, Path::Root) {
            return f.write_str("$");
        }
        let mut out = String::new();
        self.write(&mut out);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_indices_and_odd_keys() {
        let root = Path::Root;
        assert_eq!(root.to_string(), "$");
        let flags = root.key("flags");
        let flag = flags.key("new_checkout");
        assert_eq!(
            flag.key("percentage").to_string(),
            "flags.new_checkout.percentage"
        );
        let list = flag.key("include");
        assert_eq!(list.index(3).to_string(), "flags.new_checkout.include[3]");
        let dotted = flags.key("a.b");
        assert_eq!(dotted.to_string(), r#"flags["a.b"]"#);
        let quoted = flags.key("say \"hi\"");
        assert_eq!(quoted.to_string(), r#"flags["say \"hi\""]"#);
    }
}
