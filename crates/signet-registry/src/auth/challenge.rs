//! `WWW-Authenticate` challenges (RFC 7235): which scheme the registry wants, and where its
//! token service is.

use super::AuthError;

/// An authentication challenge from a registry's `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// Send basic credentials to the registry itself.
    Basic {
        /// The protection space; informative only, and empty when the registry sent none.
        realm: String,
    },
    /// Get a bearer token from the token service at `realm` (the distribution token spec).
    Bearer {
        /// The token service URL.
        realm: String,
        /// The `service` parameter to pass to the token service.
        service: Option<String>,
        /// The scope the registry asks for; may hold several scopes separated by spaces.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (RFC 7235), choosing Bearer over Basic when the
/// registry offers several challenges.
///
/// Schemes and parameter names are case-insensitive; values may be quoted (with `\`
/// escapes, and commas inside the quotes) or bare. Other schemes are skipped when Bearer or
/// Basic is offered too.
pub fn parse_www_authenticate(header: &str) -> Result<Challenge, AuthError> {
    let challenges = parse_challenges(header).map_err(|reason| AuthError::MalformedChallenge {
        header: header.to_owned(),
        reason,
    })?;
    if challenges.is_empty() {
        return Err(AuthError::MalformedChallenge {
            header: header.to_owned(),
            reason: "no challenge".to_owned(),
        });
    }
    let find = |scheme: &str| {
        challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case(scheme))
    };
    if let Some(bearer) = find("bearer") {
        let realm = bearer
            .param("realm")
            .ok_or_else(|| AuthError::MissingRealm {
                scheme: bearer.scheme.clone(),
            })?;
        return Ok(Challenge::Bearer {
            realm: realm.to_owned(),
            service: bearer.param("service").map(str::to_owned),
            scope: bearer.param("scope").map(str::to_owned),
        });
    }
    if let Some(basic) = find("basic") {
        // RFC 7617 requires a realm, but a client only displays it, and some registries
        // leave it out; refusing them would gain nothing.
        return Ok(Challenge::Basic {
            realm: basic.param("realm").unwrap_or_default().to_owned(),
        });
    }
    Err(AuthError::UnsupportedChallenge {
        schemes: challenges
            .iter()
            .map(|c| c.scheme.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// One challenge as written, before its scheme is interpreted.
struct RawChallenge {
    scheme: String,
    /// Parameters with lower-cased names, in order.
    params: Vec<(String, String)>,
}

impl RawChallenge {
    /// A parameter's value; an empty value counts as absent.
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// A cursor over a header value.
struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        // Only ASCII bytes were skipped, so both ends are character boundaries.
        self.s.get(start..self.pos).unwrap_or_default()
    }

    fn skip_ws(&mut self) {
        self.skip_while(|b| b == b' ' || b == b'\t');
    }

    fn token(&mut self) -> &'a str {
        self.skip_while(is_tchar)
    }

    fn unexpected(&self) -> String {
        match self.s.get(self.pos..).and_then(|rest| rest.chars().next()) {
            Some(c) => format!("unexpected {c:?} at byte {}", self.pos),
            None => "unexpected end".to_owned(),
        }
    }

    /// Whether a token68 (`Basic dXNlcjpwYXNz`) starts here; if so, skips it.
    fn token68(&mut self) -> bool {
        let start = self.pos;
        if self.skip_while(is_token68_char).is_empty() {
            return false;
        }
        self.skip_while(|b| b == b'=');
        self.skip_ws();
        if matches!(self.peek(), None | Some(b',')) {
            return true;
        }
        self.pos = start;
        false
    }

    /// A quoted-string, the cursor on its opening quote.
    fn quoted(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        let mut escaped = false;
        let rest = self.s.get(self.pos..).unwrap_or_default();
        for (i, c) in rest.char_indices() {
            if escaped {
                value.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                self.pos += i + 1;
                return Ok(value);
            } else {
                value.push(c);
            }
        }
        Err(format!("unterminated quoted string at byte {start}"))
    }

    /// A bare value. RFC 7235 allows only a token; registries have been seen to send URLs,
    /// so anything up to a comma or space is taken.
    fn bare(&mut self) -> Result<String, String> {
        let value = self.skip_while(|b| !matches!(b, b',' | b' ' | b'\t' | b'"'));
        if value.is_empty() {
            return Err(self.unexpected());
        }
        Ok(value.to_owned())
    }
}

/// Splits a header into challenges: `1#( scheme [ 1*SP ( token68 / #auth-param ) ] )`.
fn parse_challenges(header: &str) -> Result<Vec<RawChallenge>, String> {
    let mut p = Scanner { s: header, pos: 0 };
    let mut challenges = Vec::new();
    loop {
        p.skip_while(|b| matches!(b, b' ' | b'\t' | b','));
        if p.peek().is_none() {
            return Ok(challenges);
        }
        let scheme = p.token();
        if scheme.is_empty() {
            return Err(p.unexpected());
        }
        let mut challenge = RawChallenge {
            scheme: scheme.to_owned(),
            params: Vec::new(),
        };
        match p.peek() {
            None | Some(b',') => {
                challenges.push(challenge);
                continue;
            }
            Some(b' ' | b'\t') => p.skip_ws(),
            Some(_) => return Err(p.unexpected()),
        }
        if p.token68() {
            challenges.push(challenge);
            continue;
        }
        loop {
            p.skip_ws();
            match p.peek() {
                None => break,
                Some(b',') => {
                    p.pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            let start = p.pos;
            let name = p.token();
            if name.is_empty() {
                return Err(p.unexpected());
            }
            p.skip_ws();
            if p.peek() != Some(b'=') {
                // A token without `=` starts the next challenge.
                p.pos = start;
                break;
            }
            p.pos += 1;
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()?
            } else {
                p.bare()?
            };
            let name = name.to_ascii_lowercase();
            // Two realms would leave it open where credentials go; refuse to guess.
            if challenge.params.iter().any(|(n, _)| *n == name) {
                return Err(format!("parameter {name} given twice"));
            }
            challenge.params.push((name, value));
            p.skip_ws();
            match p.peek() {
                None => break,
                Some(b',') => p.pos += 1,
                Some(_) => return Err(p.unexpected()),
            }
        }
        challenges.push(challenge);
    }
}
