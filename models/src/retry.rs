//! What every client of every path shares about retrying: Brooker's backoff formulas and the
//! state of a retry budget (gRPC A6 token bucket, the SRE book's ratio, the AWS SDK's standard
//! quota). The payment client and the overload fleet both run on these.

use crate::knobs::{Backoff, RetryBudget};

/// How long to sleep before the next attempt after attempt `attempt` (1-based) failed,
/// Brooker's formulas with `n = attempt - 1`. `prev_sleep_us` is decorrelated jitter's memory
/// (start it at `base_us`); `jitter(hi)` draws a value in `0..=hi` through the run's choices.
pub fn backoff_us(
    backoff: Backoff,
    base_us: u64,
    cap_us: u64,
    attempt: u32,
    prev_sleep_us: &mut u64,
    mut jitter: impl FnMut(u64) -> u64,
) -> u64 {
    let n = attempt.saturating_sub(1).min(40);
    let exp = cap_us.min(base_us.saturating_mul(1 << n));
    match backoff {
        Backoff::None | Backoff::Immediate => 0,
        Backoff::Exponential => exp,
        Backoff::FullJitter => jitter(exp),
        Backoff::EqualJitter => exp / 2 + jitter(exp / 2),
        Backoff::Decorrelated => {
            let hi = prev_sleep_us.saturating_mul(3).max(base_us);
            let sleep = cap_us.min(base_us + jitter(hi - base_us));
            *prev_sleep_us = sleep;
            sleep
        }
    }
}

/// One client's retry budget as it is spent and refilled.
#[derive(Copy, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct BudgetState {
    /// gRPC tokens (x1000), or AWS quota tokens.
    tokens_milli: i64,
    /// Requests sent (first attempts and retries).
    pub requests: u64,
    /// Retries the budget allowed.
    pub retries: u64,
}

impl BudgetState {
    pub fn new(budget: RetryBudget) -> BudgetState {
        let tokens_milli = match budget {
            RetryBudget::TokenBucket { max_tokens, .. } => (max_tokens * 1000.0) as i64,
            RetryBudget::AwsQuota { max_tokens, .. } => max_tokens as i64 * 1000,
            _ => 0,
        };
        BudgetState { tokens_milli, requests: 0, retries: 0 }
    }

    /// An attempt failed (`timed_out`: with no answer): may the client retry? Counts the retry
    /// if so. Returns the tokens the retry took (for `success` to refund), or `None`.
    pub fn allow_retry(&mut self, budget: RetryBudget, timed_out: bool) -> Option<u32> {
        let cost = match budget {
            RetryBudget::None {} => Some(0),
            RetryBudget::TokenBucket { max_tokens, .. } => {
                // A6: every failure costs a token; retries stop while tokens <= max / 2.
                self.tokens_milli = (self.tokens_milli - 1000).max(0);
                (self.tokens_milli as f64 > max_tokens * 500.0).then_some(0)
            }
            RetryBudget::Ratio { percent } => ((self.retries as f64) < self.requests as f64 * percent / 100.0).then_some(0),
            RetryBudget::AwsQuota { retry_cost, timeout_cost, .. } => {
                let cost = if timed_out { timeout_cost } else { retry_cost };
                let ok = self.tokens_milli >= cost as i64 * 1000;
                if ok {
                    self.tokens_milli -= cost as i64 * 1000;
                }
                ok.then_some(cost)
            }
        };
        self.retries += cost.is_some() as u64;
        cost
    }

    /// An attempt succeeded; `refund` is what its retry took (0 for a first attempt).
    pub fn success(&mut self, budget: RetryBudget, refund: u32) {
        match budget {
            RetryBudget::TokenBucket { max_tokens, token_ratio } => {
                self.tokens_milli = (self.tokens_milli + (token_ratio * 1000.0) as i64).min((max_tokens * 1000.0) as i64);
            }
            RetryBudget::AwsQuota { max_tokens, .. } => {
                // The SDK refunds a successful retry's cost, and adds one token after a success
                // on the first attempt.
                let back = if refund > 0 { refund } else { 1 };
                self.tokens_milli = (self.tokens_milli + back as i64 * 1000).min(max_tokens as i64 * 1000);
            }
            RetryBudget::None {} | RetryBudget::Ratio { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_quota_spends_five_or_ten_and_refunds_on_success() {
        let b = RetryBudget::AwsQuota { max_tokens: 20, retry_cost: 5, timeout_cost: 10 };
        let mut s = BudgetState::new(b);
        assert_eq!(s.allow_retry(b, true), Some(10));
        assert_eq!(s.allow_retry(b, false), Some(5));
        assert_eq!(s.allow_retry(b, false), Some(5));
        assert_eq!(s.allow_retry(b, false), None, "the quota is spent");
        s.success(b, 5);
        assert_eq!(s.allow_retry(b, false), Some(5));
        assert_eq!(s.retries, 4);
    }

    #[test]
    fn token_bucket_throttles_at_half_and_ratio_at_its_percent() {
        let b = RetryBudget::TokenBucket { max_tokens: 4.0, token_ratio: 0.5 };
        let mut s = BudgetState::new(b);
        assert!(s.allow_retry(b, false).is_some()); // 3 > 2
        assert!(s.allow_retry(b, false).is_none()); // 2 <= 2
        let r = RetryBudget::Ratio { percent: 10.0 };
        let mut s = BudgetState { requests: 10, ..BudgetState::new(r) };
        assert!(s.allow_retry(r, false).is_some());
        assert!(s.allow_retry(r, false).is_none());
    }

    #[test]
    fn full_jitter_stays_under_the_exponential_cap() {
        let mut prev = 10;
        assert_eq!(backoff_us(Backoff::Exponential, 10, 100, 5, &mut prev, |_| 0), 100);
        assert_eq!(backoff_us(Backoff::FullJitter, 10, 1000, 3, &mut prev, |hi| hi), 40);
        assert_eq!(backoff_us(Backoff::EqualJitter, 10, 1000, 3, &mut prev, |_| 0), 20);
        assert_eq!(backoff_us(Backoff::Decorrelated, 10, 1000, 1, &mut prev, |hi| hi), 30);
    }
}
