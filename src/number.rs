//! Whole numbers as readers send them: in a form field, or in JSON.
//!
//! The newtypes that take a whole number (`OptionId`, `Stars`) each have one
//! parser, which takes a `Sent`: what came where the number belongs, read
//! the same way whether it came from a form or a JSON body. So a mistake
//! gets the same problem either way.
//!
//! A form field is text: a whole number in ASCII digits, with an optional
//! sign, and white space around it. JSON has one kind of number, and JSON
//! Schema (which the OpenAPI document uses) counts `4.0` and `4e0` as the
//! integer 4. A client that writes its numbers that way must get the same
//! answer as one that writes `4`, so JSON is read through `WholeNumber`,
//! which accepts any JSON number without a fractional part.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// What a reader sent where a whole number belongs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sent {
    /// Nothing: no field, or one that is empty or only white space.
    #[default]
    Nothing,
    /// Something that is not a whole number, or one beyond an `i64`.
    NotWhole,
    Whole(i64),
}

impl Sent {
    /// A form field, as text.
    pub fn from_form(field: Option<&str>) -> Self {
        match field.map(str::trim) {
            None | Some("") => Self::Nothing,
            Some(text) => text.parse().map_or(Self::NotWhole, Self::Whole),
        }
    }
}

/// A JSON value: a number without a fractional part is `Whole` (see
/// `WholeNumber`); anything else, `null` and `"2"` included, is `NotWhole`.
/// A field that is absent is `Nothing` when it is `#[serde(default)]`.
impl<'de> Deserialize<'de> for Sent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(WholeNumber::deserialize(&value).map_or(Self::NotWhole, |n| Self::Whole(n.0)))
    }
}

/// A JSON number whose value is a whole number that fits in an `i64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WholeNumber(pub i64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WholeNumberVisitor)
    }
}

struct WholeNumberVisitor;

impl Visitor<'_> for WholeNumberVisitor {
    type Value = WholeNumber;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<WholeNumber, E> {
        Ok(WholeNumber(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<WholeNumber, E> {
        i64::try_from(n)
            .map(WholeNumber)
            .map_err(|_| E::custom("the number is too large"))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<WholeNumber, E> {
        // Exactly representable whole numbers only: 2^63 and beyond do not fit.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if n.fract() == 0.0 && (-LIMIT..LIMIT).contains(&n) {
            #[allow(clippy::cast_possible_truncation)] // whole and in range, checked above
            Ok(WholeNumber(n as i64))
        } else {
            Err(E::custom("not a whole number"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Option<i64> {
        serde_json::from_str::<WholeNumber>(json).ok().map(|n| n.0)
    }

    #[test]
    fn whole_numbers_in_any_notation_are_read() {
        assert_eq!(read("4"), Some(4));
        assert_eq!(read("4.0"), Some(4));
        assert_eq!(read("4e0"), Some(4));
        assert_eq!(read("-0.0"), Some(0));
        assert_eq!(read("-3"), Some(-3));
        assert_eq!(read("9223372036854775807"), Some(i64::MAX));
    }

    fn sent(json: &str) -> Sent {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_form_field_is_trimmed_text() {
        for (field, expected) in [
            (None, Sent::Nothing),
            (Some(""), Sent::Nothing),
            (Some(" \t"), Sent::Nothing),
            (Some("4"), Sent::Whole(4)),
            (Some(" +4 "), Sent::Whole(4)),
            (Some("-0"), Sent::Whole(0)),
            (Some("4.0"), Sent::NotWhole),
            (Some("four"), Sent::NotWhole),
            (Some("99999999999999999999"), Sent::NotWhole),
        ] {
            assert_eq!(Sent::from_form(field), expected, "{field:?}");
        }
    }

    #[test]
    fn a_json_value_is_whole_or_not() {
        for (json, expected) in [
            ("4", Sent::Whole(4)),
            ("4.0", Sent::Whole(4)),
            ("-0.0", Sent::Whole(0)),
            ("4.5", Sent::NotWhole),
            ("1e19", Sent::NotWhole),
            ("\"4\"", Sent::NotWhole),
            ("null", Sent::NotWhole),
            ("[4]", Sent::NotWhole),
        ] {
            assert_eq!(sent(json), expected, "{json}");
        }
    }

    #[test]
    fn fractions_non_numbers_and_huge_numbers_are_not() {
        for json in [
            "4.5",
            "1e-3",
            "1e300",
            "9223372036854775808",
            "18446744073709551616",
            "\"4\"",
            "null",
            "true",
            "[4]",
        ] {
            assert_eq!(read(json), None, "{json}");
        }
    }
}
