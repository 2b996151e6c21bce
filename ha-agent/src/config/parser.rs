//! Token stream -> tree of statements.
//!
//! A statement is a keyword and its arguments, up to the end of the line, a `{` or a `}`. A `{`
//! right after a statement (on the same line or the next non-blank one, as keepalived's
//! `process_stream` accepts) opens its block, closed by the matching `}`. Value blocks
//! (`virtual_ipaddress { … }`) are blocks too: each of their lines is a statement.
//! Iterative, so no input can exhaust the stack.

use super::error::{Diags, Pos};
use super::lexer::{Tok, Word};

#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub keyword: Word,
    pub args: Vec<Word>,
    pub block: Option<Block>,
}

#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub open: Pos,
    pub stmts: Vec<Stmt>,
}

impl Stmt {
    pub fn kw(&self) -> &str {
        &self.keyword.text
    }

    pub fn pos(&self) -> &Pos {
        &self.keyword.pos
    }

    /// The arguments as written (quotes kept), for keywords that re-split their command line.
    pub fn raw_args(&self) -> &str {
        match (self.args.first(), self.args.last()) {
            (Some(first), Some(last)) if std::sync::Arc::ptr_eq(&first.line, &last.line) => {
                &first.line[first.start..last.end]
            }
            _ => "",
        }
    }

    /// Position just after the last word of the statement: where a missing argument should be.
    pub fn end_pos(&self) -> Pos {
        let last = self.args.last().unwrap_or(&self.keyword);
        let mut pos = last.pos.clone();
        let width = last
            .line
            .get(last.start..last.end)
            .map_or(0, |s| s.chars().count());
        pos.col = pos
            .col
            .saturating_add(u32::try_from(width).unwrap_or(0))
            .saturating_add(1);
        pos
    }
}

struct Frame {
    header: Option<(Word, Vec<Word>)>,
    open: Option<Pos>,
    stmts: Vec<Stmt>,
}

pub(crate) fn parse(toks: Vec<Tok>, diags: &mut Diags) -> Vec<Stmt> {
    let mut frames = vec![Frame {
        header: None,
        open: None,
        stmts: Vec::new(),
    }];
    let mut toks = toks.into_iter().peekable();
    // A statement whose line ended: it takes a `{` found at the start of a following line.
    let mut pending: Option<(Word, Vec<Word>)> = None;

    while let Some(tok) = toks.next() {
        match tok {
            Tok::Eol => {}
            Tok::Open(pos) => {
                let header = pending.take();
                if header.is_none() {
                    diags.error(&pos, "unexpected '{' without a keyword before it");
                }
                frames.push(Frame {
                    header,
                    open: Some(pos),
                    stmts: Vec::new(),
                });
            }
            Tok::Close(pos) => {
                flush(&mut pending, &mut frames);
                if frames.len() == 1 {
                    diags.error(&pos, "unexpected '}' with no block open");
                    continue;
                }
                close_frame(&mut frames);
            }
            Tok::Word(first) => {
                flush(&mut pending, &mut frames);
                let mut args = Vec::new();
                while let Some(Tok::Word(_)) = toks.peek() {
                    if let Some(Tok::Word(w)) = toks.next() {
                        args.push(w);
                    }
                }
                pending = Some((first, args));
                // Keep the statement pending across blank lines so a `{` on a later line opens its block.
                while matches!(toks.peek(), Some(Tok::Eol)) {
                    toks.next();
                }
                if !matches!(toks.peek(), Some(Tok::Open(_))) {
                    flush(&mut pending, &mut frames);
                }
            }
        }
    }
    flush(&mut pending, &mut frames);
    while frames.len() > 1 {
        if let Some(open) = frames.last().and_then(|f| f.open.clone()) {
            let what = frames
                .last()
                .and_then(|f| f.header.as_ref())
                .map_or(String::new(), |(kw, _)| format!(" of {}", kw.text));
            diags.error(
                &open,
                format!("missing '}}': the block{what} opened here is never closed"),
            );
        }
        close_frame(&mut frames);
    }
    frames.pop().map(|f| f.stmts).unwrap_or_default()
}

fn flush(pending: &mut Option<(Word, Vec<Word>)>, frames: &mut [Frame]) {
    if let Some((keyword, args)) = pending.take()
        && let Some(top) = frames.last_mut()
    {
        top.stmts.push(Stmt {
            keyword,
            args,
            block: None,
        });
    }
}

fn close_frame(frames: &mut Vec<Frame>) {
    let Some(frame) = frames.pop() else { return };
    let (Some((keyword, args)), Some(open)) = (frame.header, frame.open) else {
        return; // an anonymous block was reported when it opened; drop it
    };
    if let Some(parent) = frames.last_mut() {
        parent.stmts.push(Stmt {
            keyword,
            args,
            block: Some(Block {
                open,
                stmts: frame.stmts,
            }),
        });
    }
}
