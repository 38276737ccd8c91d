//! Billing-period arithmetic on unix seconds: adding calendar months and years as Stripe does,
//! keeping the time of day and clamping the day to the end of shorter months.

const DAY: i64 = 86_400;

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The UTC calendar date (year, month, day) of a count of days since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn add_months(timestamp: i64, months: i64) -> i64 {
    let days = timestamp.div_euclid(DAY);
    let seconds_of_day = timestamp.rem_euclid(DAY);
    let (year, month, day) = civil_from_days(days);
    let index = year * 12 + i64::from(month) - 1 + months;
    let (new_year, new_month) = (index.div_euclid(12), (index.rem_euclid(12) + 1) as u32);
    let new_day = day.min(days_in_month(new_year, new_month));
    days_from_civil(new_year, new_month, new_day) * DAY + seconds_of_day
}

/// `timestamp` moved forward by `count` recurring intervals (`day`, `week`, `month`, `year`).
pub(crate) fn add_interval(timestamp: i64, interval: &str, count: i64) -> i64 {
    match interval {
        "day" => timestamp + count * DAY,
        "week" => timestamp + count * 7 * DAY,
        "year" => add_months(timestamp, 12 * count),
        _ => add_months(timestamp, count),
    }
}

/// The first boundary of the periods anchored at `anchor` (every `count` `interval`s from it,
/// each day clamped to its month's end as Stripe clamps it) that comes after `after`: anchored
/// on Jan 31, the boundaries are Feb 28, Mar 31, Apr 30, never Mar 28.
pub(crate) fn boundary_after(anchor: i64, interval: &str, count: i64, after: i64) -> i64 {
    let count = count.max(1);
    let mut periods = 1;
    loop {
        let boundary = add_interval(anchor, interval, periods * count);
        if boundary > after {
            return boundary;
        }
        periods += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_after_january_31st_is_the_end_of_february() {
        let january_31 = days_from_civil(2026, 1, 31) * DAY + 3_600;

        let next = add_interval(january_31, "month", 1);

        assert_eq!(next, days_from_civil(2026, 2, 28) * DAY + 3_600);
    }

    #[test]
    fn a_year_after_a_leap_day_is_february_28th() {
        let leap_day = days_from_civil(2028, 2, 29) * DAY;

        assert_eq!(add_interval(leap_day, "year", 1), days_from_civil(2029, 2, 28) * DAY);
    }

    #[test]
    fn periods_anchored_on_the_31st_end_on_each_month_s_last_day_then_the_31st_again() {
        let at = |month, day| days_from_civil(2027, month, day) * DAY + 7_200;
        let anchor = at(1, 31);

        let ends: Vec<i64> =
            [anchor, at(2, 28), at(3, 31)].into_iter().map(|start| boundary_after(anchor, "month", 1, start)).collect();

        assert_eq!(ends, vec![at(2, 28), at(3, 31), at(4, 30)]);
        assert_eq!(boundary_after(anchor, "year", 1, anchor), days_from_civil(2028, 1, 31) * DAY + 7_200);
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-1, 0, 19_000, 20_454, 60_000] {
            let (year, month, day) = civil_from_days(days);

            assert_eq!(days_from_civil(year, month, day), days);
        }
    }
}
