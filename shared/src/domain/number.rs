//! Integers as the API's contract states them. JSON Schema counts any number with a zero
//! fractional part as an `integer` (`353.0` is one), so a request field typed `integer` takes
//! it; `serde_json`'s own `as_u64`/`as_i64` would refuse it. Only within 2^53 either way,
//! where a double holds every integer: past it, `-9223372036854775809` (one below i64's range,
//! which serde_json reads as a double) rounds to i64's minimum, so such a number is refused
//! rather than read as another. Integers written as integers keep their whole range.

use serde_json::Value;

/// 2^53: every integer up to it is exactly a double.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// `value` as an unsigned integer: an integer, or a number with a zero fraction up to 2^53.
pub fn whole_u64(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let float = value.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=EXACT).contains(f))?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "whole, 0 to 2^53")]
        Some(float as u64)
    })
}

/// `value` as a signed integer: an integer, or a number with a zero fraction within 2^53.
pub fn whole_i64(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let float = value.as_f64().filter(|f| f.fract() == 0.0 && (-EXACT..=EXACT).contains(f))?;
        #[allow(clippy::cast_possible_truncation, reason = "whole, within 2^53")]
        Some(float as i64)
    })
}

/// Serde's `deserialize_with` for an `i64` written as an integer or a whole number
/// ([`whole_i64`]).
pub fn deserialize_whole_i64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::Deserialize;
    let number = serde_json::Number::deserialize(deserializer)?;
    whole_i64(&Value::Number(number)).ok_or_else(|| serde::de::Error::custom("not a whole number in i64's range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_number_with_a_zero_fraction_is_an_integer_and_one_with_a_fraction_is_not() {
        for (value, unsigned, signed) in [
            (json!(353), Some(353), Some(353)),
            (json!(353.0), Some(353), Some(353)),
            (json!(-2.0), None, Some(-2)),
            (json!(0.0), Some(0), Some(0)),
            (json!(353.5), None, None),
            (json!(9_007_199_254_740_992.0), Some(1 << 53), Some(1 << 53)),
            (json!(1e17), None, None),
            (json!(1e300), None, None),
            (json!(-1e300), None, None),
            (json!("353"), None, None),
            (json!(null), None, None),
            (json!(u64::MAX), Some(u64::MAX), None),
            (json!(i64::MIN), None, Some(i64::MIN)),
        ] {
            assert_eq!((whole_u64(&value), whole_i64(&value)), (unsigned, signed), "{value}");
        }
    }

    #[test]
    fn a_field_read_as_a_whole_number_takes_an_integer_or_a_number_with_a_zero_fraction() {
        #[derive(serde::Deserialize)]
        struct At {
            #[serde(deserialize_with = "deserialize_whole_i64")]
            at: i64,
        }
        let at = |body: &str| serde_json::from_str::<At>(body).ok().map(|a| a.at);

        assert_eq!(at(r#"{"at": 1796520839}"#), Some(1_796_520_839));
        assert_eq!(at(r#"{"at": 1796520839.0}"#), Some(1_796_520_839));
        assert_eq!(at(r#"{"at": 9223372036854775807}"#), Some(i64::MAX));
        assert_eq!(at(r#"{"at": -9223372036854775808}"#), Some(i64::MIN));
        for refused in [
            r#"{"at": 9223372036854775808}"#,
            r#"{"at": -9223372036854775809}"#,
            r#"{"at": 1.5}"#,
            r#"{"at": "1"}"#,
            r#"{"at": null}"#,
        ] {
            assert_eq!(at(refused), None, "{refused}");
        }
    }
}
