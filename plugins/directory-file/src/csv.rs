//! A small CSV reader for directory exports (RFC 4180): a header row, then
//! records; fields quoted with `"` (a quote inside doubled, line breaks
//! allowed inside); `,` or `;` as delimiter, whichever the header row uses
//! more of outside quotes (Scandinavian Excel writes `;`); UTF-8 with or
//! without a byte-order mark; CRLF or LF line ends; blank lines skipped.
//!
//! Every error names the file (its grant name), the line and, where there
//! is one, the column; nothing here panics on any input.

use std::fmt;

/// A parsed file: its header and its records, with line numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The grant name of the file (`users`), for errors.
    pub file: String,
    /// Column names as written (trimmed).
    pub header: Vec<String>,
    pub rows: Vec<Row>,
    pub delimiter: char,
}

/// One record: the line it starts on (1-based) and its fields (trimmed).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: usize,
    pub fields: Vec<String>,
}

/// A problem in a file, at a line and perhaps a column.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvError {
    pub file: String,
    pub line: usize,
    /// 1-based column number and name, when the problem is in one field.
    pub column: Option<(usize, String)>,
    pub message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file `{}`, line {}", self.file, self.line)?;
        if let Some((n, name)) = &self.column {
            if name.is_empty() {
                write!(f, ", column {n}")?;
            } else {
                write!(f, ", column {n} (`{name}`)")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl Table {
    /// Parses `bytes` of file `file`.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Table, CsvError> {
        let err = |line: usize, message: String| CsvError {
            file: file.to_owned(),
            line,
            column: None,
            message,
        };
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let good = &bytes[..e.valid_up_to()];
            let line = 1 + good.iter().filter(|b| **b == b'\n').count();
            err(
                line,
                "the file is not UTF-8 (export it as \"CSV UTF-8\")".to_owned(),
            )
        })?;
        let delimiter = detect_delimiter(text);
        let mut records = records(text, delimiter).map_err(|(line, m)| err(line, m))?;
        if records.is_empty() {
            return Err(err(
                1,
                "the file is empty: it needs a header row".to_owned(),
            ));
        }
        let head = records.remove(0);
        let header: Vec<String> = head.fields;
        for (i, name) in header.iter().enumerate() {
            if name.is_empty() {
                return Err(CsvError {
                    column: Some((i + 1, String::new())),
                    ..err(
                        head.line,
                        "the header row has an empty column name".to_owned(),
                    )
                });
            }
            if header[..i].iter().any(|h| h.eq_ignore_ascii_case(name)) {
                return Err(CsvError {
                    column: Some((i + 1, name.clone())),
                    ..err(head.line, format!("the header row names `{name}` twice"))
                });
            }
        }
        for row in &records {
            if row.fields.len() != header.len() {
                return Err(err(
                    row.line,
                    format!(
                        "{} fields, but the header row has {} (delimiter `{delimiter}`)",
                        row.fields.len(),
                        header.len()
                    ),
                ));
            }
        }
        Ok(Table {
            file: file.to_owned(),
            header,
            rows: records,
            delimiter,
        })
    }

    /// The index of column `name` (case-insensitive), if present.
    pub fn optional(&self, name: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
    }

    /// The index of column `name`, or an error naming the file and what
    /// columns it has.
    pub fn column(&self, name: &str) -> Result<usize, CsvError> {
        self.optional(name).ok_or_else(|| CsvError {
            file: self.file.clone(),
            line: 1,
            column: None,
            message: format!(
                "the header row has no column `{name}` (it has: {}; delimiter `{}`)",
                self.header.join(", "),
                self.delimiter
            ),
        })
    }

    /// An error about field `col` of `row`.
    pub fn error_at(&self, row: &Row, col: usize, message: impl Into<String>) -> CsvError {
        CsvError {
            file: self.file.clone(),
            line: row.line,
            column: Some((col + 1, self.header.get(col).cloned().unwrap_or_default())),
            message: message.into(),
        }
    }
}

/// `;` if the first record uses more semicolons than commas outside quotes,
/// else `,`.
pub fn detect_delimiter(text: &str) -> char {
    let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => commas += 1,
            ';' if !quoted => semicolons += 1,
            '\n' if !quoted => break,
            _ => {}
        }
    }
    if semicolons > commas { ';' } else { ',' }
}

/// Splits `text` into records; blank lines are skipped. An error is the
/// line and the message.
fn records(text: &str, delimiter: char) -> Result<Vec<Row>, (usize, String)> {
    let mut rows = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut start = 1usize;
    // In a quoted field; a quoted field has ended (only a delimiter or a
    // line end may follow); the current field was quoted.
    let (mut quoted, mut closed, mut was_quoted) = (false, false, false);
    let mut chars = text.chars().peekable();
    let end_field = |fields: &mut Vec<String>, field: &mut String, was_quoted: bool| {
        let value = if was_quoted {
            std::mem::take(field)
        } else {
            std::mem::take(field).trim().to_owned()
        };
        fields.push(value);
    };
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    quoted = false;
                    closed = true;
                }
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                end_field(&mut fields, &mut field, was_quoted);
                let blank = fields.len() == 1 && fields[0].is_empty() && !was_quoted;
                if !blank {
                    rows.push(Row {
                        line: start,
                        fields: std::mem::take(&mut fields),
                    });
                }
                fields.clear();
                (closed, was_quoted) = (false, false);
                line += 1;
                start = line;
            }
            c if c == delimiter => {
                end_field(&mut fields, &mut field, was_quoted);
                (closed, was_quoted) = (false, false);
            }
            '"' if !closed && field.trim().is_empty() => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            c if closed => {
                if !c.is_whitespace() {
                    return Err((
                        line,
                        format!(
                            "column {}: `{c}` after a closing quote (a quote inside a \
                             quoted field is written `\"\"`)",
                            fields.len() + 1
                        ),
                    ));
                }
            }
            _ => field.push(c),
        }
    }
    if quoted {
        return Err((
            start,
            format!(
                "column {}: a quoted field is never closed (a `\"` is missing)",
                fields.len() + 1
            ),
        ));
    }
    end_field(&mut fields, &mut field, was_quoted);
    let blank = fields.len() == 1 && fields[0].is_empty() && !was_quoted;
    if !blank {
        rows.push(Row {
            line: start,
            fields,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(t: &Table) -> Vec<Vec<&str>> {
        t.rows
            .iter()
            .map(|r| r.fields.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn commas_quotes_and_line_breaks() {
        let t = Table::parse(
            "users",
            b"id,name\r\n1,\"Berg, Ada\"\r\n2,\"say \"\"hi\"\"\"\n\n3,\"two\nlines\"\n4, plain \n",
        )
        .unwrap();
        assert_eq!(t.delimiter, ',');
        assert_eq!(t.header, vec!["id", "name"]);
        assert_eq!(
            fields(&t),
            vec![
                vec!["1", "Berg, Ada"],
                vec!["2", "say \"hi\""],
                vec!["3", "two\nlines"],
                vec!["4", "plain"],
            ]
        );
        let lines: Vec<usize> = t.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 3, 5, 7]);
    }

    #[test]
    fn semicolons_and_a_bom() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice("id;name\n1;Åse, Nordmann\n2;\"Øy;vind\"".as_bytes());
        let t = Table::parse("users", &bytes).unwrap();
        assert_eq!(t.delimiter, ';');
        assert_eq!(t.header, vec!["id", "name"]);
        assert_eq!(
            fields(&t),
            vec![vec!["1", "Åse, Nordmann"], vec!["2", "Øy;vind"]]
        );
        assert_eq!(t.column("NAME").unwrap(), 1);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = Table::parse("users", b"id,name\n1,a\n2\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().starts_with("file `users`, line 3:"), "{e}");
        assert!(e.message.contains("1 fields, but the header row has 2"));

        let e = Table::parse("users", b"id,name\n1,\"open\n2,b\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("never closed"), "{e}");

        let e = Table::parse("users", b"id,name\n1,\"a\"b\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("column 2"), "{e}");

        let e = Table::parse("groups", b"id,name\n1,\xff\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("not UTF-8"), "{e}");

        let e = Table::parse("groups", b"").unwrap_err();
        assert!(e.message.contains("empty"), "{e}");
        let e = Table::parse("groups", b"id,ID\n").unwrap_err();
        assert!(e.to_string().contains("column 2 (`ID`)"), "{e}");

        let t = Table::parse("groups", b"id,name\n").unwrap();
        let e = t.column("members").unwrap_err();
        assert!(e.message.contains("no column `members`"), "{e}");
        assert!(e.message.contains("id, name"), "{e}");
    }

    #[test]
    fn no_input_panics() {
        for input in [
            &b"\""[..],
            b"\"\"\"",
            b",,,\n;;;",
            b"\r\r\r",
            b"a\n\"",
            b"\xEF\xBB",
            b"\xEF\xBB\xBF",
            b"a,b\n\"x\"  ,  y\n",
        ] {
            let _ = Table::parse("f", input);
        }
    }
}
