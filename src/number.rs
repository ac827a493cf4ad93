//! Whole numbers as clients send them in JSON.
//!
//! JSON has one kind of number, and JSON Schema (which the OpenAPI document
//! uses) counts `4.0` and `4e0` as the integer 4. A client that writes its
//! numbers that way must get the same answer as one that writes `4`, so the
//! newtypes that take a whole number (`OptionId`, `Stars`) read it through
//! `WholeNumber`, which accepts any JSON number without a fractional part.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

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
