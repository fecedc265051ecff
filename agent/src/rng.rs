//! A tiny xorshift generator for retry jitter: not for secrets, just so nodes don't act in lockstep.

/// Marsaglia's 64-bit xorshift (13, 7, 17). Any seed works: zero is made odd.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_seed_still_moves_and_seeds_differ() {
        let mut z = XorShift::new(0);
        assert_ne!(z.next_u64(), z.next_u64());
        assert_ne!(XorShift::new(1).next_u64(), XorShift::new(2).next_u64());
    }
}
