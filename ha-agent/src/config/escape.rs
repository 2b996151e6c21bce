//! Text from a configuration file or a packet, made safe to print: a keyword holding terminal
//! escapes (`\x1b[2J`) must not clear the operator's screen when an error or a log line echoes it.

use std::borrow::Cow;

/// `s` with every character that is not printable written as an escape: C0 controls and DEL as
/// `\xNN`, C1 controls and the bidirectional overrides (which reorder what a terminal shows)
/// as `\u{NNNN}`. Printable text, including non-ASCII letters, is kept as is.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_keeping(s, false)
}

/// [`escape`], keeping line breaks: for messages of several lines.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    escape_keeping(s, true)
}

fn escape_keeping(s: &str, newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| !(is_printable(c) || (newlines && c == '\n'));
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Not a control character and not a bidirectional formatting character.
fn is_printable(c: char) -> bool {
    !c.is_control()
        && !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_come_out_escaped() {
        assert_eq!(escape("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape("cr\rbell\x07del\x7f"), "cr\\x0dbell\\x07del\\x7f");
        assert_eq!(escape("c1\u{9b}31m"), "c1\\u{009b}31m");
        assert_eq!(escape("rtl\u{202e}txt"), "rtl\\u{202e}txt");
        assert_eq!(escape("two\nlines"), "two\\x0alines");
        assert_eq!(escape_lines("two\nlines\x1b"), "two\nlines\\x1b");
    }

    #[test]
    fn printable_text_is_borrowed_unchanged() {
        assert!(matches!(escape("eth0 /usr/bin/chk é ✓"), Cow::Borrowed(_)));
    }
}
