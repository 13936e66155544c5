//! Structure of the format (nats-server `conf/parse.go` is the reference): a document is a
//! list of `key value` entries (`=`, `:` or whitespace between them; a new line, `,` or `;`
//! after), optionally wrapped in `{ }` so a JSON document is a config; values are scalars,
//! `[ ]` arrays or `{ }` blocks; `include <path>` splices another file's keys in place;
//! `$NAME` looks back through the enclosing blocks, then the environment.

use super::error::{ConfError, Location};
use super::lexer::{LexError, Lexer, TokenKind};
use super::source::{resolve_include, Env, Fs, Include, Origin, SourceFile};
use super::span::{line_col, FileId, Span};
use super::value::{Entry, Map, Value, ValueKind};
use std::path::PathBuf;
use std::sync::Arc;

/// Includes nested deeper than this are refused (a cycle is reported before that).
pub const INCLUDE_DEPTH_LIMIT: usize = 32;

/// State shared by the files of one parse.
pub(crate) struct Session<'a> {
    fs: &'a dyn Fs,
    env: &'a Env,
    follow_includes: bool,
    pub files: Vec<SourceFile>,
    pub includes: Vec<Include>,
    include_stack: Vec<PathBuf>,
    env_active: Vec<String>,
}

impl<'a> Session<'a> {
    pub fn new(fs: &'a dyn Fs, env: &'a Env, follow_includes: bool) -> Session<'a> {
        Session {
            fs,
            env,
            follow_includes,
            files: Vec::new(),
            includes: Vec::new(),
            include_stack: Vec::new(),
            env_active: Vec::new(),
        }
    }

    pub fn add_file(&mut self, path: PathBuf, text: String, origin: Origin) -> FileId {
        self.files.push(SourceFile {
            path,
            text: Arc::from(text),
            origin,
        });
        FileId(self.files.len() - 1)
    }

    /// Parses file `id` as a document of its own (fresh variable scope, as the server does).
    pub fn parse(&mut self, id: FileId) -> Result<Map, ConfError> {
        let path = self.files[id.0].path.clone();
        let text = Arc::clone(&self.files[id.0].text);
        self.include_stack.push(path.clone());
        let mut lx = Lexer::new(&text);
        let mut p = FileParser {
            session: self,
            file: id,
            path,
            text: Arc::clone(&text),
            scopes: vec![Vec::new()],
        };
        let result = p.entries(&mut lx, None);
        let entries = p.scopes.pop().unwrap_or_default();
        self.include_stack.pop();
        result.map(|()| Map { entries })
    }

    /// The environment entry `name`, read as the server reads it: as the value of `pk=…`.
    fn env_value(&mut self, name: &str, at: Location) -> Result<Option<Value>, ConfError> {
        let Some(raw) = self.env.get(name) else {
            return Ok(None);
        };
        if self.env_active.iter().any(|n| n == name) {
            return Err(ConfError::VariableCycle {
                at,
                name: name.to_string(),
            });
        }
        let id = self.add_file(
            PathBuf::from(format!("<environment ${name}>")),
            format!("pk={raw}"),
            Origin::Env {
                name: name.to_string(),
            },
        );
        self.env_active.push(name.to_string());
        let parsed = self.parse(id);
        self.env_active.pop();
        Ok(parsed?.entry("pk").map(|e| e.value.clone()))
    }
}

struct FileParser<'s, 'a> {
    session: &'s mut Session<'a>,
    file: FileId,
    path: PathBuf,
    text: Arc<str>,
    /// The blocks enclosing the cursor, each with the entries read so far (for `$NAME`).
    scopes: Vec<Vec<Entry>>,
}

impl FileParser<'_, '_> {
    fn location(&self, offset: usize) -> Location {
        Location::at(&self.path, &self.text, offset)
    }

    fn syntax(&self, offset: usize, message: impl Into<String>) -> ConfError {
        ConfError::Syntax {
            at: self.location(offset),
            message: message.into(),
        }
    }

    fn lex_error(&self, e: LexError) -> ConfError {
        self.syntax(e.offset, e.message)
    }

    /// Entries up to the end of the input (`close` = `None`) or to the `}` matching the `{`
    /// at offset `close`.
    fn entries(&mut self, lx: &mut Lexer<'_>, close: Option<usize>) -> Result<(), ConfError> {
        loop {
            lx.skip_trivia();
            let at = lx.pos;
            match (lx.peek(), close) {
                (None, None) => return Ok(()),
                (None, Some(open)) => {
                    return Err(self.syntax(
                        at,
                        format!(
                            "'{{' opened at {} is never closed",
                            line_col(&self.text, open)
                        ),
                    ))
                }
                (Some('}'), Some(_)) => {
                    lx.bump();
                    return Ok(());
                }
                // A whole document in braces (JSON); the server reads its keys as top level.
                (Some('{'), None) => {
                    lx.bump();
                    self.entries(lx, Some(at))?;
                    continue;
                }
                (Some(c @ ('}' | '{' | '[' | ']' | ',' | ';' | '=' | ':')), _) => {
                    return Err(self.syntax(at, format!("expected a key, found '{c}'")))
                }
                _ => {}
            }
            let key = lx.key().map_err(|e| self.lex_error(e))?;
            let name = match key.kind {
                TokenKind::Include(written) => {
                    self.include(written, key.span)?;
                    "include".to_string()
                }
                TokenKind::Key(name) => {
                    let value = self.entry_value(lx, &name, key.span)?;
                    self.push_entry(Entry {
                        key: name.clone(),
                        key_span: key.span,
                        file: self.file,
                        value,
                    });
                    name
                }
                _ => return Err(self.syntax(at, "expected a key")),
            };
            self.entry_end(lx, &name, close.is_none())?;
        }
    }

    fn push_entry(&mut self, entry: Entry) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.push(entry);
        }
    }

    /// After a key: an optional `=` or `:` then the value (a value may follow on the next
    /// line only when no separator was written, as in the server).
    fn entry_value(
        &mut self,
        lx: &mut Lexer<'_>,
        key: &str,
        key_span: Span,
    ) -> Result<Value, ConfError> {
        lx.skip_space();
        match lx.peek() {
            Some('=' | ':') => {
                lx.bump();
                lx.skip_blank();
            }
            None => return Err(self.syntax(key_span.start, format!("key `{key}` has no value"))),
            _ => {}
        }
        self.value(lx)
    }

    /// What may follow an entry: a comment, a new line, `,`, `;`, the closing `}`, the end.
    fn entry_end(&mut self, lx: &mut Lexer<'_>, key: &str, top: bool) -> Result<(), ConfError> {
        lx.skip_blank();
        if lx.at_comment() {
            lx.skip_comment();
            return Ok(());
        }
        match lx.peek() {
            None => Ok(()),
            Some('\n' | '\r' | ',' | ';') => {
                lx.bump();
                Ok(())
            }
            Some('}') => {
                // At top level the server drops a stray `}` after a value.
                if top {
                    lx.bump();
                }
                Ok(())
            }
            Some(c) => Err(self.syntax(
                lx.pos,
                format!("expected a new line, ',' or ';' after the value of `{key}`, found '{c}'"),
            )),
        }
    }

    fn value(&mut self, lx: &mut Lexer<'_>) -> Result<Value, ConfError> {
        let start = lx.pos;
        let kind = match lx.peek() {
            Some('[') => self.array(lx)?,
            Some('{') => {
                lx.bump();
                self.scopes.push(Vec::new());
                let body = self.entries(lx, Some(start));
                let entries = self.scopes.pop().unwrap_or_default();
                body?;
                ValueKind::Map(Map { entries })
            }
            _ => {
                let token = lx.scalar().map_err(|e| self.lex_error(e))?;
                match token.kind {
                    TokenKind::Str { value, quote } => ValueKind::String { value, quote },
                    TokenKind::Integer(n) => ValueKind::Integer(n),
                    TokenKind::Float(f) => ValueKind::Float(f),
                    TokenKind::Bool(b) => ValueKind::Bool(b),
                    TokenKind::Datetime(d) => ValueKind::Datetime(d),
                    TokenKind::Variable(name) => {
                        let resolved = self.lookup(&name, start)?.map(Box::new);
                        ValueKind::Variable { name, resolved }
                    }
                    TokenKind::Key(_) | TokenKind::Include(_) => {
                        return Err(self.syntax(start, "expected a value"))
                    }
                }
            }
        };
        Ok(Value {
            kind,
            span: Span::new(start, lx.pos),
            file: self.file,
        })
    }

    fn array(&mut self, lx: &mut Lexer<'_>) -> Result<ValueKind, ConfError> {
        let open = lx.pos;
        lx.bump();
        let unclosed = |p: &Self, at: usize| {
            p.syntax(
                at,
                format!("'[' opened at {} is never closed", line_col(&p.text, open)),
            )
        };
        let mut items = Vec::new();
        loop {
            lx.skip_trivia();
            match lx.peek() {
                None => return Err(unclosed(self, lx.pos)),
                Some(']') => {
                    lx.bump();
                    return Ok(ValueKind::Array(items));
                }
                Some(',') => {
                    return Err(self.syntax(lx.pos, "unexpected ',' in array (no value before it)"))
                }
                _ => {}
            }
            items.push(self.value(lx)?);
            lx.skip_blank();
            if lx.at_comment() {
                lx.skip_comment();
                continue;
            }
            match lx.peek() {
                Some(',' | '\n' | '\r') => {
                    lx.bump();
                }
                Some(']') => {
                    lx.bump();
                    return Ok(ValueKind::Array(items));
                }
                None => return Err(unclosed(self, lx.pos)),
                Some(c) => {
                    return Err(self.syntax(
                        lx.pos,
                        format!(
                            "expected ',', a new line or ']' after an array value, found '{c}'"
                        ),
                    ))
                }
            }
        }
    }

    /// `$name`: the latest key `name` in the enclosing blocks, then the environment.
    fn lookup(&mut self, name: &str, at: usize) -> Result<Option<Value>, ConfError> {
        for scope in self.scopes.iter().rev() {
            if let Some(e) = scope.iter().rev().find(|e| e.key == name) {
                return Ok(Some(e.value.clone()));
            }
        }
        let loc = self.location(at);
        self.session.env_value(name, loc)
    }

    /// `include <written>` at `span`: the included file's keys join the current block.
    fn include(&mut self, written: String, span: Span) -> Result<(), ConfError> {
        let path = resolve_include(&self.path, &written);
        let at = self.location(span.start);
        if !self.session.follow_includes {
            self.session.includes.push(Include {
                from: self.file,
                span,
                written,
                path,
                file: None,
            });
            return Ok(());
        }
        if self.session.include_stack.contains(&path) {
            let mut chain = self.session.include_stack.clone();
            chain.push(path);
            return Err(ConfError::IncludeCycle { at, chain });
        }
        if self.session.include_stack.len() >= INCLUDE_DEPTH_LIMIT {
            return Err(ConfError::IncludeTooDeep {
                at,
                limit: INCLUDE_DEPTH_LIMIT,
            });
        }
        let text = self
            .session
            .fs
            .read(&path)
            .map_err(|source| ConfError::Read {
                path: path.clone(),
                included_from: Some(at),
                source,
            })?;
        let origin = Origin::Included {
            from: self.file,
            span,
        };
        let id = self.session.add_file(path.clone(), text, origin);
        self.session.includes.push(Include {
            from: self.file,
            span,
            written,
            path,
            file: Some(id),
        });
        let map = self.session.parse(id)?;
        if let Some(scope) = self.scopes.last_mut() {
            scope.extend(map.entries);
        }
        Ok(())
    }
}
