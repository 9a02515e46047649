//! Python literals as `repr()` writes them: the GlobalOpinionQA CSV stores its answer options
//! as a list repr (`['Yes', "Don't know"]`) and its shares as a `defaultdict` repr
//! (`defaultdict(<class 'list'>, {'Britain': [0.1, 0.9]})`). Parsed here, so that reading the
//! CSV needs no Python: strings in either quote style with backslash escapes, numbers
//! (with `nan` and `inf`), lists and dicts.
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Number(f64),
    List(Vec<Literal>),
    /// Entries in written order.
    Dict(Vec<(Literal, Literal)>),
}

/// Where the text stops being a literal, as a 1-based character column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiteralError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for LiteralError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.message, self.column)
    }
}

/// One literal filling the whole text.
pub(crate) fn parse(text: &str) -> Result<Literal, LiteralError> {
    let mut p = Parser::new(text);
    let value = p.value()?;
    p.end()?;
    Ok(value)
}

/// A dict, bare or wrapped as `defaultdict(<class '…'>, {…})`.
pub(crate) fn parse_defaultdict(text: &str) -> Result<Literal, LiteralError> {
    let mut p = Parser::new(text);
    p.skip_space();
    if p.eat_word("defaultdict") {
        p.expect('(')?;
        p.expect('<')?;
        if !p.eat_word("class") {
            return Err(p.error("expected `class`"));
        }
        p.string()?;
        p.expect('>')?;
        p.expect(',')?;
        let value = p.value()?;
        p.expect(')')?;
        p.end()?;
        Ok(value)
    } else {
        parse(text)
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn new(text: &str) -> Self {
        Parser {
            chars: text.chars().collect(),
            at: 0,
        }
    }

    fn error(&self, message: impl Into<String>) -> LiteralError {
        LiteralError {
            column: self.at + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    /// Consumes `c` after optional whitespace, or fails naming it.
    fn expect(&mut self, c: char) -> Result<(), LiteralError> {
        self.skip_space();
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected `{c}`")))
        }
    }

    /// Consumes `word` (after optional whitespace) if it comes next as a whole word.
    fn eat_word(&mut self, word: &str) -> bool {
        self.skip_space();
        let end = self.at + word.chars().count();
        let matches = end <= self.chars.len()
            && self.chars[self.at..end].iter().copied().eq(word.chars())
            && !self
                .chars
                .get(end)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_');
        if matches {
            self.at = end;
        }
        matches
    }

    fn end(&mut self) -> Result<(), LiteralError> {
        self.skip_space();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("unexpected text after the value")),
        }
    }

    fn value(&mut self) -> Result<Literal, LiteralError> {
        self.skip_space();
        match self.peek() {
            Some('[') => self.list(),
            Some('{') => self.dict(),
            Some('\'' | '"') => self.string().map(Literal::Str),
            Some(c) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'n' | 'i') => {
                self.number()
            }
            Some(c) => Err(self.error(format!("unexpected `{c}`"))),
            None => Err(self.error("unexpected end of text")),
        }
    }

    /// Items separated by commas up to `close`, a trailing comma allowed.
    fn items<T>(
        &mut self,
        close: char,
        mut item: impl FnMut(&mut Self) -> Result<T, LiteralError>,
    ) -> Result<Vec<T>, LiteralError> {
        self.at += 1; // the opening bracket
        let mut items = Vec::new();
        loop {
            self.skip_space();
            if self.peek() == Some(close) {
                self.at += 1;
                return Ok(items);
            }
            items.push(item(self)?);
            self.skip_space();
            match self.peek() {
                Some(',') => self.at += 1,
                Some(c) if c == close => {}
                _ => return Err(self.error(format!("expected `,` or `{close}`"))),
            }
        }
    }

    fn list(&mut self) -> Result<Literal, LiteralError> {
        self.items(']', Self::value).map(Literal::List)
    }

    fn dict(&mut self) -> Result<Literal, LiteralError> {
        self.items('}', |p| {
            let key = p.value()?;
            p.expect(':')?;
            Ok((key, p.value()?))
        })
        .map(Literal::Dict)
    }

    fn number(&mut self) -> Result<Literal, LiteralError> {
        let start = self.at;
        if matches!(self.peek(), Some('-' | '+')) {
            self.at += 1;
        }
        if self.eat_word("nan") || self.eat_word("inf") {
            let text: String = self.chars[start..self.at].iter().collect();
            let value: f64 = text.parse().expect("nan and inf parse");
            return Ok(Literal::Number(value));
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '_'))
            || (matches!(self.peek(), Some('-' | '+'))
                && matches!(self.chars.get(self.at - 1), Some('e' | 'E')))
        {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error(format!("unexpected `{}`", self.chars[start])));
        }
        let text: String = self.chars[start..self.at]
            .iter()
            .filter(|c| **c != '_')
            .collect();
        text.parse().map(Literal::Number).map_err(|_| LiteralError {
            column: start + 1,
            message: format!("`{text}` is not a number"),
        })
    }

    fn string(&mut self) -> Result<String, LiteralError> {
        self.skip_space();
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(self.error("expected a quoted string")),
        };
        let start = self.at;
        self.at += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(LiteralError {
                    column: start + 1,
                    message: "string not closed".into(),
                });
            };
            self.at += 1;
            match c {
                c if c == quote => return Ok(out),
                '\\' => self.escape(&mut out)?,
                c => out.push(c),
            }
        }
    }

    /// The escape after a backslash, as Python reads it; an unknown escape keeps its backslash.
    fn escape(&mut self, out: &mut String) -> Result<(), LiteralError> {
        let Some(c) = self.peek() else {
            return Err(self.error("string not closed"));
        };
        self.at += 1;
        let simple = match c {
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            '0' => Some('\0'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'v' => Some('\u{b}'),
            '\n' => return Ok(()),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s);
            return Ok(());
        }
        let digits = match c {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => {
                out.push('\\');
                out.push(c);
                return Ok(());
            }
        };
        let from = self.at - 2;
        let hex: String = self.chars.iter().skip(self.at).take(digits).collect();
        let decoded = (hex.len() == digits)
            .then(|| u32::from_str_radix(&hex, 16).ok())
            .flatten()
            .and_then(char::from_u32);
        match decoded {
            Some(ch) => {
                self.at += digits;
                out.push(ch);
                Ok(())
            }
            None => Err(LiteralError {
                column: from + 1,
                message: format!("bad `\\{c}` escape"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Literal {
        Literal::Str(text.into())
    }

    #[test]
    fn lists_of_strings_in_both_quote_styles_with_escapes() {
        let parsed =
            parse(r#"['Yes', "Don't know", 'It\'s "fine"', 'a\\b', '\xe9\u00e9', 'Ünïcode']"#);
        assert_eq!(
            parsed,
            Ok(Literal::List(vec![
                s("Yes"),
                s("Don't know"),
                s("It's \"fine\""),
                s("a\\b"),
                s("éé"),
                s("Ünïcode"),
            ]))
        );
        assert_eq!(parse("[]"), Ok(Literal::List(vec![])));
        assert_eq!(parse("['a',]"), Ok(Literal::List(vec![s("a")])));
    }

    #[test]
    fn numbers_including_python_float_reprs() {
        let parsed = parse("[0.1, 1, -2.5e-05, 3E2, nan, -inf]").unwrap();
        let Literal::List(items) = parsed else {
            panic!("not a list")
        };
        let numbers: Vec<f64> = items
            .into_iter()
            .map(|l| match l {
                Literal::Number(x) => x,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(&numbers[..4], &[0.1, 1.0, -2.5e-5, 300.0]);
        assert!(numbers[4].is_nan());
        assert_eq!(numbers[5], f64::NEG_INFINITY);
    }

    #[test]
    fn defaultdict_and_plain_dicts() {
        let want = Literal::Dict(vec![
            (
                s("Britain"),
                Literal::List(vec![Literal::Number(0.25), Literal::Number(0.75)]),
            ),
            (s("S. Korea"), Literal::List(vec![Literal::Number(1.0)])),
        ]);
        let text = "defaultdict(<class 'list'>, {'Britain': [0.25, 0.75], 'S. Korea': [1.0]})";
        assert_eq!(parse_defaultdict(text), Ok(want.clone()));
        let text = "{'Britain': [0.25, 0.75], \"S. Korea\": [1.0]}";
        assert_eq!(parse_defaultdict(text), Ok(want));
    }

    #[test]
    fn errors_say_where() {
        let e = parse("['a', 'b'").unwrap_err();
        assert_eq!(e.column, 10);
        assert!(e.message.contains("expected `,` or `]`"), "{e}");
        let e = parse("['a' 'b']").unwrap_err();
        assert_eq!(e.column, 6);
        let e = parse("['unterminated]").unwrap_err();
        assert_eq!((e.column, e.message.as_str()), (2, "string not closed"));
        let e = parse_defaultdict("defaultdict(<class 'list'>, {'A': [0.5]}").unwrap_err();
        assert!(e.message.contains("expected `)`"), "{e}");
        let e = parse("[0.5.5]").unwrap_err();
        assert_eq!(e.column, 2);
        assert!(parse("['a'] x").is_err());
        assert!(parse("[None]").is_err());
    }
}
