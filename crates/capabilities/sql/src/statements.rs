//! Just enough SQL lexing to rewrite placeholders and split migration files.
//!
//! Components write `?` placeholders once for both backends; PostgreSQL wants `$1`,
//! `$2`, …. A `?` inside a string literal, a quoted identifier, a comment or a
//! dollar-quoted body is text, not a placeholder, and a `;` there does not end a
//! statement, so both jobs share one scanner that knows where those regions are.

/// Byte ranges of `s` that are SQL code (not literals, quoted names or comments),
/// visited in order; `f` gets each code byte's index.
fn for_each_code_byte(sql: &str, mut f: impl FnMut(usize, u8)) {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        // A doubled quote is an escaped quote, still inside.
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'$' => match dollar_quote_tag(&sql[i..]) {
                Some(tag) => {
                    let body = i + tag.len();
                    i = sql[body..].find(tag).map_or(bytes.len(), |end| body + end + tag.len());
                }
                None => {
                    f(i, b'$');
                    i += 1;
                }
            },
            byte => {
                f(i, byte);
                i += 1;
            }
        }
    }
}

/// `$tag$` or `$$` at the start of `s` (PostgreSQL dollar quoting); not `$1`.
fn dollar_quote_tag(s: &str) -> Option<&str> {
    let rest = &s[1..];
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let valid = tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !tag.starts_with(|c: char| c.is_ascii_digit());
    valid.then(|| &s[..end + 2])
}

/// Rewrites `?` placeholders to PostgreSQL's numbered `$n`.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut positions = Vec::new();
    for_each_code_byte(sql, |i, b| {
        if b == b'?' {
            positions.push(i);
        }
    });
    let mut out = String::with_capacity(sql.len() + positions.len() * 2);
    let mut last = 0;
    for (n, &pos) in positions.iter().enumerate() {
        out.push_str(&sql[last..pos]);
        out.push_str(&format!("${}", n + 1));
        last = pos + 1;
    }
    out.push_str(&sql[last..]);
    out
}

/// Splits a script into its statements (without the `;`), skipping empty ones, so a
/// failing migration can name the statement that failed.
pub fn split_statements(script: &str) -> Vec<&str> {
    let mut ends = Vec::new();
    for_each_code_byte(script, |i, b| {
        if b == b';' {
            ends.push(i);
        }
    });
    let mut statements = Vec::new();
    let mut start = 0;
    for end in ends.into_iter().chain(std::iter::once(script.len())) {
        let statement = script[start..end].trim();
        if !is_only_comments(statement) {
            statements.push(statement);
        }
        start = (end + 1).min(script.len());
    }
    statements
}

fn is_only_comments(statement: &str) -> bool {
    let mut code = false;
    for_each_code_byte(statement, |_, b| code |= !b.is_ascii_whitespace());
    !code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals_and_comments() {
        assert_eq!(
            numbered_placeholders("SELECT * FROM t WHERE a = ? AND b = '?' AND c = ? -- ?\n AND \"d?\" = ?"),
            "SELECT * FROM t WHERE a = $1 AND b = '?' AND c = $2 -- ?\n AND \"d?\" = $3"
        );
        assert_eq!(numbered_placeholders("SELECT 'it''s ?', ?"), "SELECT 'it''s ?', $1");
        assert_eq!(numbered_placeholders("SELECT $$ ? $$, /* ? */ ?"), "SELECT $$ ? $$, /* ? */ $1");
        assert_eq!(numbered_placeholders("SELECT ?, $tag$ a ? b $tag$"), "SELECT $1, $tag$ a ? b $tag$");
    }

    #[test]
    fn scripts_split_on_semicolons_in_code_only() {
        let script = "CREATE TABLE a (x TEXT DEFAULT ';');\n-- a comment; with a semicolon\nINSERT INTO a VALUES ('x;y');\n\n";
        assert_eq!(
            split_statements(script),
            vec!["CREATE TABLE a (x TEXT DEFAULT ';')", "-- a comment; with a semicolon\nINSERT INTO a VALUES ('x;y')"]
        );
        assert_eq!(split_statements("SELECT 1"), vec!["SELECT 1"]);
        assert!(split_statements("-- nothing\n;\n").is_empty());
    }

    #[test]
    fn unterminated_regions_do_not_panic() {
        for s in ["'open", "\"open", "/* open", "$tag$ open", "$", "?$"] {
            let _ = numbered_placeholders(s);
            let _ = split_statements(s);
        }
    }
}
