//! Evaluation of a compiled rule: JsonLogic's semantics (the reference
//! JavaScript implementation's truthiness, loose equality and number
//! conversions) over a [`Context`], returning a [`Val`] that borrows the
//! rule's constants and the context's strings. Only operations that build
//! new values (`cat` outside `fractional`, `merge`, `missing`, a computed
//! array) allocate.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::context::{AttributeValue, Context};

use super::expr::{Arith, Fractional, Key, Lit, Node, Order, SemVer, Slot, Weight, NO_VARIANT};
use super::murmur::{bucket, Murmur3};
use super::semver::Version;

/// A value computed by a rule.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    /// A string, and the variant it names when it is a constant of the
    /// rule ([`NO_VARIANT`] otherwise).
    Str(&'a str, u16),
    Owned(String),
    /// A constant array.
    Lits(&'a [Lit]),
    /// A list attribute of the context.
    Strs(&'a [&'a str]),
    List(Vec<Val<'a>>),
}

impl<'a> Val<'a> {
    fn lit(lit: &'a Lit) -> Self {
        match lit {
            Lit::Null => Val::Null,
            Lit::Bool(b) => Val::Bool(*b),
            Lit::Num(n) => Val::Num(*n),
            Lit::Str(s, v) => Val::Str(s, *v),
            Lit::Array(items) => Val::Lits(items),
        }
    }

    /// The string, for a string value.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s, _) => Some(s),
            Val::Owned(s) => Some(s),
            _ => None,
        }
    }

    fn is_array(&self) -> bool {
        matches!(self, Val::Lits(_) | Val::Strs(_) | Val::List(_))
    }

    fn len(&self) -> usize {
        match self {
            Val::Lits(l) => l.len(),
            Val::Strs(l) => l.len(),
            Val::List(l) => l.len(),
            _ => 0,
        }
    }

    fn item(&self, i: usize) -> Val<'_> {
        match self {
            Val::Lits(l) => l.get(i).map_or(Val::Null, Val::lit),
            Val::Strs(l) => l.get(i).map_or(Val::Null, |s| Val::Str(s, NO_VARIANT)),
            Val::List(l) => l.get(i).cloned().unwrap_or(Val::Null),
            _ => Val::Null,
        }
    }

    fn into_items(self, out: &mut Vec<Val<'a>>) {
        match self {
            Val::Lits(l) => out.extend(l.iter().map(Val::lit)),
            Val::Strs(l) => out.extend(l.iter().map(|s| Val::Str(s, NO_VARIANT))),
            Val::List(l) => out.extend(l),
            other => out.push(other),
        }
    }
}

/// JsonLogic truthiness: `false`, `null`, `0`, `NaN`, `""` and `[]` are false.
pub(crate) fn truthy(v: &Val<'_>) -> bool {
    match v {
        Val::Null => false,
        Val::Bool(b) => *b,
        Val::Num(n) => *n != 0.0 && !n.is_nan(),
        Val::Str(s, _) => !s.is_empty(),
        Val::Owned(s) => !s.is_empty(),
        _ => v.len() != 0,
    }
}

/// JavaScript's `Number(string)`: surrounding whitespace ignored, empty is
/// 0, otherwise a decimal literal (or `Infinity`), else NaN.
fn string_to_number(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() {
        return 0.0;
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    // Rust also reads "inf" and "nan", which JavaScript does not.
    if unsigned
        .bytes()
        .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
    {
        return f64::NAN;
    }
    t.parse().unwrap_or(f64::NAN)
}

/// JavaScript's `Number(value)` (`ToNumber`).
fn to_number(v: &Val<'_>) -> f64 {
    match v {
        Val::Null => 0.0,
        Val::Bool(b) => f64::from(u8::from(*b)),
        Val::Num(n) => *n,
        Val::Str(s, _) => string_to_number(s),
        Val::Owned(s) => string_to_number(s),
        _ => match v.len() {
            0 => 0.0,
            1 => {
                let mut buf = StackString::default();
                let _ = write_js(&v.item(0), &mut buf);
                if buf.overflow {
                    f64::NAN
                } else {
                    string_to_number(buf.as_str())
                }
            }
            _ => f64::NAN,
        },
    }
}

/// JavaScript's `parseFloat(value)`: the longest decimal prefix, else NaN
/// (what JsonLogic's `+` and `*` use).
fn parse_float(v: &Val<'_>) -> f64 {
    let text = match v {
        Val::Num(n) => return *n,
        Val::Str(s, _) => *s,
        Val::Owned(s) => s.as_str(),
        _ => {
            let mut buf = StackString::default();
            let _ = write_js(v, &mut buf);
            return if buf.overflow {
                f64::NAN
            } else {
                parse_float_str(buf.as_str())
            };
        }
    };
    parse_float_str(text)
}

fn parse_float_str(text: &str) -> f64 {
    let t = text.trim_start();
    let b = t.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    if t[i..].starts_with("Infinity") {
        return if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let digits_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut mantissa_digits = i - digits_start;
    if b.get(i) == Some(&b'.') {
        let dot = i;
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        mantissa_digits += i - dot - 1;
        if mantissa_digits == 0 {
            return f64::NAN;
        }
    }
    if mantissa_digits == 0 {
        return f64::NAN;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_start = j;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    t[..i].parse().unwrap_or(f64::NAN)
}

/// A number as JavaScript's `String(number)` writes it (for the usual
/// range: integers without a fraction, otherwise the shortest decimal that
/// reads back).
fn write_number(n: f64, out: &mut impl fmt::Write) -> fmt::Result {
    if n.is_nan() {
        out.write_str("NaN")
    } else if n.is_infinite() {
        out.write_str(if n > 0.0 { "Infinity" } else { "-Infinity" })
    } else if n == 0.0 {
        out.write_str("0")
    } else if n.fract() == 0.0 && n.abs() < 1e21 {
        write!(out, "{n:.0}")
    } else {
        write!(out, "{n}")
    }
}

/// A value as JavaScript's `String(value)` in an array join (what `cat`
/// writes): `null` is empty, arrays join with commas.
fn write_js(v: &Val<'_>, out: &mut impl fmt::Write) -> fmt::Result {
    match v {
        Val::Null => Ok(()),
        Val::Bool(b) => out.write_str(if *b { "true" } else { "false" }),
        Val::Num(n) => write_number(*n, out),
        Val::Str(s, _) => out.write_str(s),
        Val::Owned(s) => out.write_str(s),
        _ => {
            for i in 0..v.len() {
                if i > 0 {
                    out.write_char(',')?;
                }
                write_js(&v.item(i), out)?;
            }
            Ok(())
        }
    }
}

/// A small buffer on the stack for number conversions of short strings.
struct StackString {
    buf: [u8; 64],
    len: usize,
    overflow: bool,
}

impl Default for StackString {
    fn default() -> Self {
        StackString {
            buf: [0; 64],
            len: 0,
            overflow: false,
        }
    }
}

impl StackString {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackString {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            self.overflow = true;
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `===`: same type and value (strings by content, arrays never).
fn strict_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// `==`: JavaScript's loose equality over JSON values.
fn loose_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Null, _) | (_, Val::Null) => false,
        (Val::Bool(x), _) => loose_eq(&Val::Num(f64::from(u8::from(*x))), b),
        (_, Val::Bool(y)) => loose_eq(a, &Val::Num(f64::from(u8::from(*y)))),
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Num(x), _) => *x == to_number(b),
        (_, Val::Num(y)) => to_number(a) == *y,
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => x == y,
            // An array against a string compares its joined text.
            (Some(s), None) | (None, Some(s)) => {
                let arr = if a.is_array() { a } else { b };
                let mut buf = StackString::default();
                write_js(arr, &mut buf).is_ok() && buf.as_str() == s
            }
            // Two arrays are equal only when they are the same object.
            (None, None) => false,
        },
    }
}

/// `<` and friends: strings compare as strings, anything else as numbers.
fn compare(order: Order, a: &Val<'_>, b: &Val<'_>) -> bool {
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        return match order {
            Order::Lt => x < y,
            Order::Le => x <= y,
            Order::Gt => x > y,
            Order::Ge => x >= y,
        };
    }
    let (x, y) = (to_number(a), to_number(b));
    match order {
        Order::Lt => x < y,
        Order::Le => x <= y,
        Order::Gt => x > y,
        Order::Ge => x >= y,
    }
}

/// What evaluation reads besides the rule: the context.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    pub(crate) context: &'a Context<'a>,
}

impl<'a> Env<'a> {
    fn read(&self, slot: Slot) -> Option<Val<'a>> {
        match slot {
            Slot::TargetingKey => {
                let key = self.context.key();
                (!key.is_empty()).then_some(Val::Str(key, NO_VARIANT))
            }
            Slot::Timestamp => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                Some(Val::Num(secs as f64))
            }
            Slot::Attribute(key) => Some(match self.context.find(key)? {
                AttributeValue::String(s) => Val::Str(s, NO_VARIANT),
                AttributeValue::Number(n) => Val::Num(*n),
                AttributeValue::Bool(b) => Val::Bool(*b),
                AttributeValue::List(items) => Val::Strs(items),
                AttributeValue::Timestamp(t) => Val::Num(
                    t.duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs() as f64),
                ),
                // A parsed version has no text to hand back: pass versions
                // as strings.
                _ => Val::Null,
            }),
        }
    }

    fn missing(&self, key: &Key) -> bool {
        match self.read(key.slot) {
            None | Some(Val::Null) => true,
            Some(v) => v.as_str() == Some(""),
        }
    }
}

impl Node {
    /// Evaluates the node.
    pub(crate) fn eval<'a>(&'a self, env: &Env<'a>) -> Val<'a> {
        match self {
            Node::Lit(lit) => Val::lit(lit),
            Node::Var(var) => match env.read(var.slot) {
                Some(v) => v,
                None => var.default.as_ref().map_or(Val::Null, |d| d.eval(env)),
            },
            Node::Array(items) => Val::List(items.iter().map(|n| n.eval(env)).collect()),
            Node::If(args) => {
                let mut i = 0;
                while i + 1 < args.len() {
                    if truthy(&args[i].eval(env)) {
                        return args[i + 1].eval(env);
                    }
                    i += 2;
                }
                args.get(i).map_or(Val::Null, |n| n.eval(env))
            }
            Node::And(args) => {
                let mut last = Val::Null;
                for arg in args.iter() {
                    last = arg.eval(env);
                    if !truthy(&last) {
                        return last;
                    }
                }
                last
            }
            Node::Or(args) => {
                let mut last = Val::Null;
                for arg in args.iter() {
                    last = arg.eval(env);
                    if truthy(&last) {
                        return last;
                    }
                }
                last
            }
            Node::Not(arg) => Val::Bool(!truthy(&arg.eval(env))),
            Node::Truthy(arg) => Val::Bool(truthy(&arg.eval(env))),
            Node::LooseEq(pair, negate) => {
                Val::Bool(loose_eq(&pair[0].eval(env), &pair[1].eval(env)) != *negate)
            }
            Node::StrictEq(pair, negate) => {
                Val::Bool(strict_eq(&pair[0].eval(env), &pair[1].eval(env)) != *negate)
            }
            Node::Compare(order, args) => {
                let a = args[0].eval(env);
                let b = args[1].eval(env);
                if let Some(c) = args.get(2) {
                    // The between forms: a < b < c, a <= b <= c.
                    if !compare(*order, &a, &b) {
                        return Val::Bool(false);
                    }
                    let c = c.eval(env);
                    return Val::Bool(compare(*order, &b, &c));
                }
                Val::Bool(compare(*order, &a, &b))
            }
            Node::In(pair) => {
                let needle = pair[0].eval(env);
                let hay = pair[1].eval(env);
                Val::Bool(contains(&hay, &needle))
            }
            Node::Cat(args) => {
                let mut out = String::new();
                for arg in args.iter() {
                    let _ = write_js(&arg.eval(env), &mut out);
                }
                Val::Owned(out)
            }
            Node::Substr(args) => substr(args, env),
            Node::Merge(args) => {
                let mut out = Vec::new();
                for arg in args.iter() {
                    arg.eval(env).into_items(&mut out);
                }
                Val::List(out)
            }
            Node::Missing(keys) => Val::List(
                keys.iter()
                    .filter(|k| env.missing(k))
                    .map(|k| Val::Str(&k.name, NO_VARIANT))
                    .collect(),
            ),
            Node::MissingSome(need, keys) => {
                let present = keys.iter().filter(|k| !env.missing(k)).count();
                if present >= *need {
                    Val::List(Vec::new())
                } else {
                    Val::List(
                        keys.iter()
                            .filter(|k| env.missing(k))
                            .map(|k| Val::Str(&k.name, NO_VARIANT))
                            .collect(),
                    )
                }
            }
            Node::Arith(op, args) => Val::Num(arith(*op, args, env)),
            Node::StartsWith(pair) | Node::EndsWith(pair) => {
                let a = pair[0].eval(env);
                let b = pair[1].eval(env);
                match (a.as_str(), b.as_str()) {
                    (Some(s), Some(affix)) => Val::Bool(if matches!(self, Node::StartsWith(_)) {
                        s.starts_with(affix)
                    } else {
                        s.ends_with(affix)
                    }),
                    // flagd answers null, not false, for non-strings.
                    _ => Val::Null,
                }
            }
            Node::SemVer(s) => sem_ver(s, env),
            Node::Fractional(f) => fractional(f, env),
        }
    }
}

fn contains(hay: &Val<'_>, needle: &Val<'_>) -> bool {
    if let Some(text) = hay.as_str() {
        // `indexOf` on a string converts the needle to a string.
        return match needle.as_str() {
            Some(n) => text.contains(n),
            None => {
                let mut buf = StackString::default();
                write_js(needle, &mut buf).is_ok()
                    && !matches!(needle, Val::Null)
                    && text.contains(buf.as_str())
            }
        };
    }
    if hay.is_array() {
        return (0..hay.len()).any(|i| strict_eq(&hay.item(i), needle));
    }
    false
}

fn substr<'a>(args: &'a [Node], env: &Env<'a>) -> Val<'a> {
    let source = args[0].eval(env);
    let start = to_number(&args[1].eval(env));
    let len = args.get(2).map(|n| to_number(&n.eval(env)));
    let owned;
    let text: &str = match source.as_str() {
        Some(s) => s,
        None => {
            let mut s = String::new();
            let _ = write_js(&source, &mut s);
            owned = s;
            &owned
        }
    };
    let count = text.chars().count() as f64;
    let clamp = |x: f64| -> usize {
        let x = if x.is_nan() { 0.0 } else { x.trunc() };
        let x = if x < 0.0 {
            (count + x).max(0.0)
        } else {
            x.min(count)
        };
        x as usize
    };
    let from = clamp(start);
    let to = match len {
        None => count as usize,
        Some(l) if l.is_nan() => from,
        Some(l) if l < 0.0 => clamp(l).max(from),
        Some(l) => (from + l.trunc() as usize).min(count as usize),
    };
    let byte = |chars: usize| {
        text.char_indices()
            .nth(chars)
            .map_or(text.len(), |(i, _)| i)
    };
    let (a, b) = (byte(from), byte(to.max(from)));
    match source {
        Val::Str(s, _) => Val::Str(&s[a..b], NO_VARIANT),
        _ => Val::Owned(text[a..b].to_owned()),
    }
}

fn arith(op: Arith, args: &[Node], env: &Env<'_>) -> f64 {
    match op {
        Arith::Add => args.iter().map(|n| parse_float(&n.eval(env))).sum(),
        Arith::Mul => args
            .iter()
            .map(|n| parse_float(&n.eval(env)))
            .fold(1.0, |a, b| a * b),
        Arith::Sub => {
            let a = to_number(&args[0].eval(env));
            match args.get(1) {
                Some(b) => a - to_number(&b.eval(env)),
                None => -a,
            }
        }
        Arith::Div => to_number(&args[0].eval(env)) / to_number(&args[1].eval(env)),
        Arith::Rem => to_number(&args[0].eval(env)) % to_number(&args[1].eval(env)),
        Arith::Min => args.iter().fold(f64::INFINITY, |m, n| {
            let x = to_number(&n.eval(env));
            if x.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.min(x)
            }
        }),
        Arith::Max => args.iter().fold(f64::NEG_INFINITY, |m, n| {
            let x = to_number(&n.eval(env));
            if x.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(x)
            }
        }),
    }
}

/// Reads a `sem_ver` operand: a string, or a number written as JavaScript
/// would (`1.2` reads as `1.2.0`).
fn version_text<'v>(v: &'v Val<'_>, buf: &'v mut StackString) -> Option<&'v str> {
    match v {
        Val::Num(n) => {
            write_number(*n, buf).ok()?;
            Some(buf.as_str())
        }
        other => other.as_str(),
    }
}

fn sem_ver<'a>(s: &'a SemVer, env: &Env<'a>) -> Val<'a> {
    let left = s.left.eval(env);
    let mut lbuf = StackString::default();
    let Some(a) = version_text(&left, &mut lbuf).and_then(Version::parse) else {
        return Val::Null;
    };
    let holds = match &s.right_const {
        Some(b) => s.op.holds(&a, &b.get()),
        None => {
            let right = s.right.eval(env);
            let mut rbuf = StackString::default();
            let Some(b) = version_text(&right, &mut rbuf).and_then(Version::parse) else {
                return Val::Null;
            };
            s.op.holds(&a, &b)
        }
    };
    Val::Bool(holds)
}

/// Hashes the bucketing value; `None` when an expression gives no string.
fn bucketing_hash(f: &Fractional, env: &Env<'_>) -> Option<u32> {
    let mut h = Murmur3::default();
    match &f.by {
        // Without a targeting key the flag key alone is hashed (the
        // testbed's single-bucket scenario has no targeting key).
        None => {
            h.write(f.flag_key.as_bytes());
            h.write(env.context.key().as_bytes());
        }
        // A `cat` is hashed piece by piece: the same bytes, no string built.
        Some(Node::Cat(parts)) => {
            for part in parts.iter() {
                write_js(&part.eval(env), &mut h).ok()?;
            }
        }
        Some(expr) => {
            let v = expr.eval(env);
            h.write(v.as_str()?.as_bytes());
        }
    }
    Some(h.finish())
}

/// A weight read at run time: a non-negative integer up to 2^31 - 1
/// (negative counts as 0); anything else voids the split.
fn weight(w: &Weight, env: &Env<'_>) -> Option<u64> {
    match w {
        Weight::Const(w) => Some(*w),
        Weight::Expr(expr) => match expr.eval(env) {
            Val::Num(n) if n.is_finite() && n.fract() == 0.0 && n <= f64::from(i32::MAX) => {
                Some(n.max(0.0) as u64)
            }
            _ => None,
        },
    }
}

fn fractional<'a>(f: &'a Fractional, env: &Env<'a>) -> Val<'a> {
    let Some(hash) = bucketing_hash(f, env) else {
        return Val::Null;
    };
    let total = match f.total {
        Some(t) => t,
        None => {
            let mut t = 0u64;
            for (_, w) in f.buckets.iter() {
                let Some(w) = weight(w, env) else {
                    return Val::Null;
                };
                t += w;
            }
            if t > i32::MAX as u64 {
                return Val::Null;
            }
            t
        }
    };
    if total == 0 {
        return Val::Null;
    }
    let b = bucket(hash, total);
    let mut end = 0u64;
    for (name, w) in f.buckets.iter() {
        end += weight(w, env).unwrap_or(0);
        if b < end {
            return name.eval(env);
        }
    }
    Val::Null
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn javascript_numbers() {
        assert_eq!(string_to_number(" 12 "), 12.0);
        assert_eq!(string_to_number(""), 0.0);
        assert!(string_to_number("12abc").is_nan());
        assert!(string_to_number("inf").is_nan());
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert_eq!(parse_float_str("12abc"), 12.0);
        assert_eq!(parse_float_str(" 1.5e3x"), 1500.0);
        assert!(parse_float_str("abc").is_nan());
        assert!(parse_float_str(".").is_nan());
        let mut s = String::new();
        write_number(3.0, &mut s).unwrap();
        write_number(0.1, &mut s).unwrap();
        write_number(-0.0, &mut s).unwrap();
        assert_eq!(s, "30.10");
    }

    #[test]
    fn loose_equality_follows_javascript() {
        let s = |t| Val::Str(t, NO_VARIANT);
        assert!(loose_eq(&Val::Num(1.0), &s("1")));
        assert!(loose_eq(&Val::Bool(true), &s("1")));
        assert!(loose_eq(&Val::Num(0.0), &s("")));
        assert!(!loose_eq(&Val::Null, &Val::Num(0.0)));
        assert!(loose_eq(&Val::Null, &Val::Null));
        assert!(!strict_eq(&Val::Num(1.0), &s("1")));
        assert!(strict_eq(&s("a"), &Val::Owned("a".into())));
    }

    #[test]
    fn truthiness() {
        for v in [
            Val::Null,
            Val::Bool(false),
            Val::Num(0.0),
            Val::Num(f64::NAN),
            Val::Str("", 0),
            Val::List(vec![]),
        ] {
            assert!(!truthy(&v), "{v:?}");
        }
        for v in [
            Val::Bool(true),
            Val::Num(-1.0),
            Val::Str("0", 0),
            Val::List(vec![Val::Null]),
        ] {
            assert!(truthy(&v), "{v:?}");
        }
    }
}
