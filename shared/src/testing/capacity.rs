//! What a DynamoDB request costs in capacity units, from the sizes of the items it touches, by
//! the rules AWS publishes in the DynamoDB Developer Guide:
//!
//! - item sizes: "DynamoDB item sizes and formats"
//!   (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>);
//! - units per operation: "DynamoDB read and write operations"
//!   (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html>);
//! - transactions: "Amazon DynamoDB Transactions: How it works", capacity management
//!   (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html>).
//!
//! Sizes are in bytes and 1 KB is 1024 bytes, as DynamoDB counts ("Constraints in Amazon
//! DynamoDB"). These are the billing rules, not a measurement: the request's
//! `ConsumedCapacity` is what DynamoDB actually charged. Reads answer `f64` (an eventually
//! consistent read costs half a unit per 4 KB), writes whole units.

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// The bytes one read unit covers: a strongly consistent read of up to 4 KB.
pub const READ_UNIT_BYTES: u64 = 4 * 1024;

/// The bytes one write unit covers: a write of up to 1 KB.
pub const WRITE_UNIT_BYTES: u64 = 1024;

/// What a List or Map costs whatever its contents ("requires 3 bytes of overhead").
const CONTAINER_OVERHEAD: u64 = 3;

/// What each List or Map element costs besides itself ("also requires 1 byte of overhead").
const ELEMENT_OVERHEAD: u64 = 1;

/// The size of an item as DynamoDB counts it: for each attribute, the UTF-8 bytes of its name
/// plus the size of its value:
///
/// - String: its UTF-8 bytes.
/// - Number: 1 byte per two significant digits, rounded up, plus 1 byte (see [`number_size`]).
/// - Binary: its raw bytes (not its base64 form).
/// - Boolean, Null: 1 byte.
/// - List, Map: 3 bytes, plus for each element 1 byte and the element's size (a Map element's
///   size includes its name's UTF-8 bytes); an empty List or Map is 3 bytes.
/// - String, Number and Binary sets: the sum of their elements' sizes, each by the rule of its
///   type. The AWS page gives no rule for sets; this one adds no overhead.
///
/// A value of a type newer than this SDK (`Unknown`) counts as nothing. Saturates at
/// `u64::MAX` rather than overflowing.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> u64 {
    total(item.iter().map(|(name, value)| bytes(name).saturating_add(value_size(value))))
}

/// The size of one attribute value, without its name.
fn value_size(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(text) => bytes(text),
        AttributeValue::N(number) => number_size(number),
        AttributeValue::B(blob) => length(blob.as_ref().len()),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => total(set.iter().map(|text| bytes(text))),
        AttributeValue::Ns(set) => total(set.iter().map(|number| number_size(number))),
        AttributeValue::Bs(set) => total(set.iter().map(|blob| length(blob.as_ref().len()))),
        AttributeValue::L(list) => CONTAINER_OVERHEAD
            .saturating_add(total(list.iter().map(|element| ELEMENT_OVERHEAD.saturating_add(value_size(element))))),
        AttributeValue::M(map) => {
            CONTAINER_OVERHEAD.saturating_add(total(map.iter().map(|(name, element)| {
                ELEMENT_OVERHEAD.saturating_add(bytes(name)).saturating_add(value_size(element))
            })))
        }
        _ => 0,
    }
}

/// The size of a number given as DynamoDB's string form (`"-1.5e10"`): AWS's rule,
/// "approximately (1 byte per two significant digits) + (1 byte)", with leading and trailing
/// zeroes trimmed. Implemented as `ceil(d / 2) + 1`, where `d` counts the digits of the
/// mantissa (the part before any exponent) from its first non-zero digit to its last; sign,
/// decimal point and exponent count nothing. Zero has no significant digit: 1 byte. So `1` is
/// 2 bytes, `12345` is 4, `12300` and `0.0123` are 3, `-1.5e10` is 2.
pub fn number_size(number: &str) -> u64 {
    let mantissa = number.split_once(['e', 'E']).map_or(number, |(mantissa, _)| mantissa);
    let significant = mantissa.trim_start_matches(['-', '+']).trim_matches(['0', '.']);
    let digits = length(significant.bytes().filter(u8::is_ascii_digit).count());
    digits.div_ceil(2).saturating_add(1)
}

/// Read units for one `GetItem` of an item of `size` bytes: the size rounded up to the next
/// 4 KB, one unit per 4 KB when `consistent`, half of that when eventually consistent. A read
/// of an item that does not exist (size 0) still costs one unit (half eventually consistent).
pub fn read_units(size: u64, consistent: bool) -> f64 {
    consistency(units(size, READ_UNIT_BYTES), consistent)
}

/// Read units for one `BatchGetItem`: each item costs what a `GetItem` of it would (rounded up
/// to 4 KB on its own), so a 1.5 KB and a 6.5 KB item cost 12 KB, not 8.
pub fn batch_get_read_units(sizes: &[u64], consistent: bool) -> f64 {
    consistency(per_item(sizes, READ_UNIT_BYTES), consistent)
}

/// Read units for one `Query` page returning (or a `Scan` page evaluating) items of `sizes`:
/// the items are one read, their total size rounded up to 4 KB once, not per item. A page that
/// finds nothing still costs one unit (half eventually consistent).
pub fn query_read_units(sizes: &[u64], consistent: bool) -> f64 {
    consistency(units(total(sizes.iter().copied()), READ_UNIT_BYTES), consistent)
}

/// Read units for one `TransactGetItems`: DynamoDB reads every item twice (prepare and
/// commit), so each costs twice its strongly consistent `GetItem`.
pub fn transact_read_units(sizes: &[u64]) -> f64 {
    consistency(per_item(sizes, READ_UNIT_BYTES).saturating_mul(2), true)
}

/// Write units for one `PutItem`, `UpdateItem` or `DeleteItem` of `size` bytes: the size
/// rounded up to the next 1 KB. When a put replaces an item, or for an update, pass the larger
/// of the sizes before and after. A write of nothing (a failed condition on an absent item)
/// still costs one unit.
pub fn write_units(size: u64) -> u64 {
    units(size, WRITE_UNIT_BYTES)
}

/// Write units for one `BatchWriteItem`: each put or delete costs what it would alone
/// (rounded up to 1 KB on its own), so a 500-byte and a 3.5 KB item cost 5 KB, not 4.
pub fn batch_write_units(sizes: &[u64]) -> u64 {
    per_item(sizes, WRITE_UNIT_BYTES)
}

/// Write units for one `TransactWriteItems`: DynamoDB writes every item twice (prepare and
/// commit), so each costs twice its write alone; three 500-byte items cost 6.
pub fn transact_write_units(sizes: &[u64]) -> u64 {
    per_item(sizes, WRITE_UNIT_BYTES).saturating_mul(2)
}

/// Whole units of `unit` bytes covering `size`, at least one.
fn units(size: u64, unit: u64) -> u64 {
    size.div_ceil(unit).max(1)
}

/// Units for items charged one by one.
fn per_item(sizes: &[u64], unit: u64) -> u64 {
    total(sizes.iter().map(|&size| units(size, unit)))
}

/// Read units as charged: strongly consistent ones whole, eventually consistent ones halved.
fn consistency(strong_units: u64, consistent: bool) -> f64 {
    let units = strong_units as f64;
    if consistent { units } else { units / 2.0 }
}

fn total(sizes: impl Iterator<Item = u64>) -> u64 {
    sizes.fold(0, u64::saturating_add)
}

fn bytes(text: &str) -> u64 {
    length(text.len())
}

fn length(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;

    const KB: u64 = 1024;

    fn item<const N: usize>(attributes: [(&str, AttributeValue); N]) -> HashMap<String, AttributeValue> {
        attributes.into_iter().map(|(name, value)| (name.to_owned(), value)).collect()
    }

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }

    fn n(number: &str) -> AttributeValue {
        AttributeValue::N(number.to_owned())
    }

    #[test]
    fn an_empty_item_has_no_size_but_still_costs_a_unit() {
        let empty = HashMap::new();

        let size = item_size(&empty);

        assert_eq!(size, 0);
        assert_eq!(read_units(size, true), 1.0);
        assert_eq!(read_units(size, false), 0.5);
        assert_eq!(write_units(size), 1);
    }

    #[test]
    fn scalar_attributes_count_their_name_and_value() {
        let scalars = item([
            ("pk", s("ACCOUNT#a1")),
            ("n", n("12345")),
            ("ok", AttributeValue::Bool(true)),
            ("gone", AttributeValue::Null(true)),
            ("b", AttributeValue::B(Blob::new(vec![0, 1, 2]))),
        ]);

        let size = item_size(&scalars);

        // pk 2+10, n 1+4, ok 2+1, gone 4+1, b 1+3 (raw bytes, not base64)
        assert_eq!(size, 12 + 5 + 3 + 5 + 4);
    }

    #[test]
    fn strings_and_names_count_utf8_bytes_not_characters() {
        let accented = item([("café", s("naïve €"))]);

        let size = item_size(&accented);

        assert_eq!(size, 5 + 10);
    }

    #[test]
    fn numbers_cost_a_byte_per_two_significant_digits_plus_one() {
        let sizes =
            ["0", "-0", "1", "12", "123", "12345", "12300", "100.5", "0.00120", "-1.5e10", "+7E-3"].map(number_size);

        assert_eq!(sizes, [1, 1, 2, 2, 3, 4, 3, 3, 2, 2, 2]);
    }

    #[test]
    fn lists_and_maps_cost_three_bytes_and_one_per_element() {
        let nested = item([
            (
                "m",
                AttributeValue::M(item([
                    ("a", s("xy")),
                    ("l", AttributeValue::L(vec![n("1"), AttributeValue::Bool(false)])),
                ])),
            ),
            ("e", AttributeValue::L(vec![])),
        ]);

        let size = item_size(&nested);

        // m: name 1 + map 3 + element a (1 + name 1 + "xy" 2)
        //    + element l (1 + name 1 + list 3 + (1 + number 2) + (1 + bool 1)); e: name 1 + list 3
        assert_eq!(size, (1 + 3 + 4 + (1 + 1 + 3 + 3 + 2)) + (1 + 3));
    }

    #[test]
    fn sets_cost_the_sum_of_their_elements() {
        let sets = item([
            ("ss", AttributeValue::Ss(vec!["a".into(), "bc".into()])),
            ("ns", AttributeValue::Ns(vec!["1".into(), "12345".into()])),
            ("bs", AttributeValue::Bs(vec![Blob::new(vec![1]), Blob::new(vec![2, 3])])),
        ]);

        let size = item_size(&sets);

        assert_eq!(size, (2 + 3) + (2 + 2 + 4) + (2 + 3));
    }

    #[test]
    fn writes_round_up_to_whole_kilobytes() {
        let exactly_one_kb = item([("d", s(&"x".repeat(1023)))]);
        let one_byte_more = item([("d", s(&"x".repeat(1024)))]);

        let (at, over) = (item_size(&exactly_one_kb), item_size(&one_byte_more));

        assert_eq!((at, over), (1024, 1025));
        assert_eq!(write_units(at), 1);
        assert_eq!(write_units(over), 2);
        assert_eq!(write_units(500), 1, "AWS: a 500-byte item costs what a 1 KB item does");
        assert_eq!(write_units(3 * KB / 2), 2, "1.5 KB");
        assert_eq!(write_units(1_639), 2, "AWS: an item of 1.6 KB rounds up to 2 KB");
    }

    #[test]
    fn reads_round_up_to_4_kb_and_eventual_consistency_halves_them() {
        assert_eq!(read_units(4 * KB, true), 1.0);
        assert_eq!(read_units(4 * KB + 1, true), 2.0);
        assert_eq!(read_units(3_500, true), 1.0, "AWS: 3,500 bytes cost what 4 KB do");
        assert_eq!(read_units(7 * KB, true), 2.0);
        assert_eq!(read_units(7 * KB, false), 1.0);
        assert_eq!(read_units(8 * KB, true), 2.0, "AWS: 8 KB strongly consistent");
        assert_eq!(read_units(8 * KB, false), 1.0, "AWS: 8 KB eventually consistent");
        assert_eq!(read_units(10 * KB, true), 3.0, "AWS: 10 KB rounds up to 12 KB");
        assert_eq!(read_units(KB, false), 0.5);
    }

    #[test]
    fn a_query_rounds_its_total_once_not_each_item() {
        let ten_items_of_40_8_kb = [4_178; 10];
        let fifteen_hundred_64_byte_items = [64; 1500];

        let forty_four_kb = query_read_units(&ten_items_of_40_8_kb, true);
        let ninety_six_kb = query_read_units(&fifteen_hundred_64_byte_items, true);

        assert_eq!(forty_four_kb, 11.0, "AWS: 10 items of 40.8 KB round up to 44 KB");
        assert_eq!(batch_get_read_units(&ten_items_of_40_8_kb, true), 20.0, "per item, as GetItems");
        assert_eq!(ninety_six_kb, 24.0, "AWS: 1500 items of 64 bytes are 96 KB");
        assert_eq!(query_read_units(&[80 * KB], false), 10.0, "AWS: 80 KB eventually consistent");
        assert_eq!(query_read_units(&[], true), 1.0, "a query that finds nothing still reads");
        assert_eq!(query_read_units(&[], false), 0.5);
    }

    #[test]
    fn a_batch_get_rounds_each_item_like_a_get_item() {
        let one_and_a_half_and_six_and_a_half_kb = [3 * KB / 2, 13 * KB / 2];

        let twelve_kb = batch_get_read_units(&one_and_a_half_and_six_and_a_half_kb, true);

        assert_eq!(twelve_kb, 3.0, "AWS: 4 KB + 8 KB, not 8 KB");
        assert_eq!(batch_get_read_units(&one_and_a_half_and_six_and_a_half_kb, false), 1.5);
        assert_eq!(batch_get_read_units(&[0, 0], true), 2.0, "keys not found still cost a read each");
    }

    #[test]
    fn a_batch_write_rounds_each_item_to_1_kb() {
        let half_and_three_and_a_half_kb = [500, 7 * KB / 2];

        let five_kb = batch_write_units(&half_and_three_and_a_half_kb);

        assert_eq!(five_kb, 5, "AWS: 1 KB + 4 KB, not 4 KB");
    }

    #[test]
    fn transactions_cost_twice_each_item() {
        let three_500_byte_items = [500; 3];

        let (writes, reads) = (transact_write_units(&three_500_byte_items), transact_read_units(&three_500_byte_items));

        assert_eq!(writes, 6, "AWS: three 500-byte items, prepare and commit");
        assert_eq!(reads, 6.0, "AWS: three 500-byte items read in a transaction");
        assert_eq!(transact_read_units(&[8 * KB]), 4.0, "AWS: 8 KB transactional read");
        assert_eq!(transact_write_units(&[3 * KB / 2, 5 * KB]), 2 * (2 + 5));
    }

    #[test]
    fn huge_values_saturate_instead_of_panicking() {
        let huge = item([("n", n(&"9".repeat(100_001))), ("s", s(&"x".repeat(1 << 20)))]);

        let size = item_size(&huge);

        assert_eq!(size, (1 + 50_001 + 1) + (1 + (1 << 20)));
        assert_eq!(read_units(u64::MAX, true), 2f64.powi(52));
        assert_eq!(write_units(u64::MAX), 1 << 54);
        assert_eq!(query_read_units(&[u64::MAX, u64::MAX], false), 2f64.powi(51));
        assert_eq!(batch_get_read_units(&[u64::MAX; 5000], true), u64::MAX as f64);
        assert_eq!(batch_write_units(&[u64::MAX; 2000]), u64::MAX);
        assert_eq!(transact_write_units(&[u64::MAX; 1000]), u64::MAX);
        assert_eq!(transact_read_units(&[u64::MAX; 4000]), u64::MAX as f64);
    }
}
