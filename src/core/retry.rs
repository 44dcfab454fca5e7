//! When a notice that failed is tried again, and when it is given up. Pure.

/// When to try a failed notice again: 5 minutes after the first failure,
/// doubling up to an hour.
pub fn retry_delay(attempts_so_far: u32) -> chrono::Duration {
    let minutes = 5i64.saturating_mul(1 << attempts_so_far.saturating_sub(1).min(4));
    chrono::Duration::minutes(minutes.min(60))
}

/// Whether a notice that just failed its `attempts`-th time should be given up.
pub fn give_up(attempts: u32, max_attempts: u32, age: chrono::Duration, max_age_hours: u32) -> bool {
    attempts >= max_attempts || age >= chrono::Duration::hours(i64::from(max_age_hours))
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn backs_off_to_an_hour() {
        let minutes: Vec<i64> = (1..=7).map(|a| retry_delay(a).num_minutes()).collect();
        assert_eq!(minutes, vec![5, 10, 20, 40, 60, 60, 60]);
        assert_eq!(retry_delay(0).num_minutes(), 5);
    }

    #[test]
    fn gives_up_after_attempts_or_age() {
        let h = chrono::Duration::hours;
        assert!(!give_up(1, 3, h(1), 48));
        assert!(give_up(3, 3, h(1), 48));
        assert!(give_up(1, 3, h(48), 48));
    }
}
