//! RFC 3550 Appendix A.1 sequence tracking, extended with duplicate detection.
//!
//! The RFC algorithm counts duplicates as received, which makes its loss figure too
//! small (negative with enough duplicates). The contract wants
//! `lost = expected − unique received`, so a 128-slot bitmap behind the highest
//! sequence number tells a duplicate from a late packet. 128 covers the RFC's
//! `MAX_MISORDER` (100): anything older is rejected by A.1 itself.

/// Largest forward jump taken as loss rather than a restart (RFC 3550 A.1).
pub const MAX_DROPOUT: u16 = 3000;
/// Largest backward step taken as reordering rather than a restart (RFC 3550 A.1).
pub const MAX_MISORDER: u16 = 100;
/// Sequential packets needed before a new source is believed (RFC 3550 A.1).
pub const MIN_SEQUENTIAL: u8 = 2;
/// Slots in the duplicate/playout window.
pub const WINDOW: u64 = 128;

/// What the tracker made of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// In sequence or a new highest: the extended sequence number.
    Next(u64),
    /// Arrived after a higher sequence number, first copy.
    Late(u64),
    /// A copy of a sequence number already received.
    Duplicate(u64),
    /// Still on probation: not yet known to be a real source.
    Probation,
    /// A large jump: held back until the next packet confirms a restart.
    Jump,
    /// The packet after a jump confirmed it: the source restarted at this number.
    /// The previous packet (the jump) and this one start a new segment.
    Restart(u64),
}

/// Per-source sequence state (RFC 3550 A.1 `source` struct plus uniqueness).
#[derive(Debug, Clone)]
pub struct SeqTracker {
    max_seq: u16,
    cycles: u64,
    base_ext: u64,
    bad_seq: u32,
    probation: u8,
    probation_first: u16,
    started: bool,
    /// Bit `ext % 128` set when that extended sequence number has been received.
    seen: u128,
    /// Expected and unique counts of segments closed by a restart.
    closed_expected: u64,
    closed_unique: u64,
    unique: u64,
    duplicates: u64,
    late: u64,
}

impl Default for SeqTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl SeqTracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        SeqTracker {
            max_seq: 0,
            cycles: 0,
            base_ext: 0,
            bad_seq: 65537,
            probation: MIN_SEQUENTIAL,
            probation_first: 0,
            started: false,
            seen: 0,
            closed_expected: 0,
            closed_unique: 0,
            unique: 0,
            duplicates: 0,
            late: 0,
        }
    }

    /// A tracker that trusts the source from its first packet (flows already confirmed
    /// by signalling or by the heuristic), so the first packet counts.
    pub fn trusted() -> Self {
        SeqTracker {
            probation: 0,
            ..Self::new()
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_ext = u64::from(seq);
        self.max_seq = seq;
        self.cycles = 0;
        self.bad_seq = 65537;
        self.seen = 0;
        self.unique = 0;
    }

    fn mark(&mut self, ext: u64) -> bool {
        let bit = 1u128 << (ext % WINDOW);
        let fresh = self.seen & bit == 0;
        self.seen |= bit;
        fresh
    }

    fn advance_to(&mut self, ext: u64) {
        let old = self.highest_ext();
        // Forget the slots the window moves past, so they can mean their new number.
        let steps = ext.saturating_sub(old).min(WINDOW);
        for i in 1..=steps {
            self.seen &= !(1u128 << ((old + i) % WINDOW));
        }
    }

    /// Feeds one sequence number in arrival order.
    pub fn update(&mut self, seq: u16) -> SeqOutcome {
        if !self.started {
            self.started = true;
            if self.probation == 0 {
                self.init_seq(seq);
                self.mark(u64::from(seq));
                self.unique = 1;
                return SeqOutcome::Next(u64::from(seq));
            }
            self.probation_first = seq;
            self.max_seq = seq;
            self.probation -= 1;
            return SeqOutcome::Probation;
        }
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    // Unlike A.1, the run's first packet is the base: it was real.
                    let first = self.probation_first;
                    self.init_seq(first);
                    self.max_seq = seq;
                    if seq < first {
                        self.cycles = 65536;
                    }
                    let mut ext = u64::from(first);
                    loop {
                        self.mark(ext);
                        self.unique += 1;
                        if ext == self.highest_ext() {
                            break;
                        }
                        ext += 1;
                    }
                    return SeqOutcome::Next(self.highest_ext());
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.probation_first = seq;
                self.max_seq = seq;
            }
            return SeqOutcome::Probation;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            let mut cycles = self.cycles;
            if seq < self.max_seq {
                cycles += 65536;
            }
            let ext = cycles + u64::from(seq);
            if udelta == 0 {
                self.duplicates += 1;
                return SeqOutcome::Duplicate(ext);
            }
            self.advance_to(ext);
            self.cycles = cycles;
            self.max_seq = seq;
            self.mark(ext);
            self.unique += 1;
            SeqOutcome::Next(ext)
        } else if udelta <= u16::MAX - MAX_MISORDER {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a big jump: the source restarted.
                self.closed_expected += self.segment_expected();
                self.closed_unique += self.unique;
                let prev = seq.wrapping_sub(1);
                self.init_seq(prev);
                self.max_seq = seq;
                if seq < prev {
                    self.cycles = 65536;
                }
                let ext = self.highest_ext();
                self.mark(ext - 1);
                self.mark(ext);
                self.unique = 2;
                SeqOutcome::Restart(ext)
            } else {
                self.bad_seq = u32::from(seq.wrapping_add(1));
                SeqOutcome::Jump
            }
        } else {
            // Within MAX_MISORDER behind the highest: late or duplicate.
            let high = self.highest_ext();
            let back = u64::from(self.max_seq.wrapping_sub(seq));
            let Some(ext) = high.checked_sub(back) else {
                return SeqOutcome::Jump;
            };
            if ext < self.base_ext {
                // Older than the first packet of this segment: not part of it.
                return SeqOutcome::Jump;
            }
            if self.mark(ext) {
                self.unique += 1;
                self.late += 1;
                SeqOutcome::Late(ext)
            } else {
                self.duplicates += 1;
                SeqOutcome::Duplicate(ext)
            }
        }
    }

    /// Highest extended sequence number of the current segment.
    pub fn highest_ext(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    /// First extended sequence number of the current segment.
    pub fn base_ext(&self) -> u64 {
        self.base_ext
    }

    fn segment_expected(&self) -> u64 {
        if self.unique == 0 {
            0
        } else {
            self.highest_ext() + 1 - self.base_ext
        }
    }

    /// Highest − first + 1, summed over segments.
    pub fn expected(&self) -> u64 {
        self.closed_expected + self.segment_expected()
    }

    /// Distinct sequence numbers received.
    pub fn unique(&self) -> u64 {
        self.closed_unique + self.unique
    }

    /// `expected − unique`, never negative.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.unique())
    }

    /// Copies of already-received sequence numbers.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// First copies that arrived after a higher sequence number.
    pub fn out_of_order(&self) -> u64 {
        self.late
    }

    /// Whether the source has passed probation.
    pub fn is_valid(&self) -> bool {
        self.started && self.probation == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut SeqTracker, seqs: &[u16]) -> Vec<SeqOutcome> {
        seqs.iter().map(|&s| t.update(s)).collect()
    }

    #[test]
    fn clean_run() {
        let mut t = SeqTracker::trusted();
        feed(&mut t, &(100..150).collect::<Vec<_>>());
        assert_eq!((t.expected(), t.unique(), t.lost()), (50, 50, 0));
    }

    #[test]
    fn loss_reorder_duplicate() {
        // s2 of ALGORITHMS.md §7 F: loses 10 and 20–22, swaps 30/31, duplicates 40.
        let mut seqs: Vec<u16> = (0..64).filter(|s| ![10, 20, 21, 22].contains(s)).collect();
        let i = seqs.iter().position(|&s| s == 30).expect("present");
        seqs.swap(i, i + 1);
        let j = seqs.iter().position(|&s| s == 40).expect("present");
        seqs.insert(j + 1, 40);
        let mut t = SeqTracker::trusted();
        let out = feed(&mut t, &seqs);
        assert_eq!(t.expected(), 64);
        assert_eq!(t.unique(), 60);
        assert_eq!(t.lost(), 4);
        assert_eq!(t.duplicates(), 1);
        assert_eq!(t.out_of_order(), 1);
        assert!(out.contains(&SeqOutcome::Late(30)));
        assert!(out.contains(&SeqOutcome::Duplicate(40)));
    }

    #[test]
    fn wrap() {
        let seqs: Vec<u16> = (0..400u32)
            .map(|i| (65400 + i) as u16)
            .filter(|&s| s != 5 && s != 6)
            .collect();
        let mut t = SeqTracker::trusted();
        feed(&mut t, &seqs);
        assert_eq!(t.expected(), 400);
        assert_eq!(t.lost(), 2);
        assert_eq!(t.highest_ext(), 65400 + 399);
    }

    #[test]
    fn duplicate_after_wrap_and_late_across_wrap() {
        let mut t = SeqTracker::trusted();
        let out = feed(&mut t, &[65534, 0, 65535, 1, 1]);
        assert_eq!(out[2], SeqOutcome::Late(65535));
        assert_eq!(out[4], SeqOutcome::Duplicate(65537));
        assert_eq!((t.expected(), t.unique(), t.lost()), (4, 4, 0));
    }

    #[test]
    fn probation_counts_the_first_packet_once_confirmed() {
        let mut t = SeqTracker::new();
        assert_eq!(t.update(10), SeqOutcome::Probation);
        assert!(!t.is_valid());
        assert_eq!(t.update(11), SeqOutcome::Next(11));
        assert!(t.is_valid());
        t.update(12);
        assert_eq!((t.expected(), t.unique()), (3, 3));
    }

    #[test]
    fn probation_restarts_on_a_gap() {
        let mut t = SeqTracker::new();
        assert_eq!(t.update(10), SeqOutcome::Probation);
        assert_eq!(t.update(500), SeqOutcome::Probation);
        assert_eq!(t.update(501), SeqOutcome::Next(501));
        assert_eq!((t.expected(), t.unique()), (2, 2));
    }

    #[test]
    fn big_jump_then_restart_is_not_loss() {
        let mut t = SeqTracker::trusted();
        feed(&mut t, &[1, 2, 3, 4]);
        assert_eq!(t.update(40000), SeqOutcome::Jump);
        assert_eq!(t.update(40001), SeqOutcome::Restart(40001));
        t.update(40002);
        assert_eq!((t.expected(), t.unique(), t.lost()), (7, 7, 0));
    }

    #[test]
    fn single_stray_jump_is_ignored() {
        let mut t = SeqTracker::trusted();
        feed(&mut t, &[1, 2, 3]);
        assert_eq!(t.update(30000), SeqOutcome::Jump);
        assert_eq!(t.update(4), SeqOutcome::Next(4));
        assert_eq!((t.expected(), t.lost()), (4, 0));
    }

    #[test]
    fn loss_below_max_dropout_counts() {
        let mut t = SeqTracker::trusted();
        feed(&mut t, &[1, 2, 2000, 2001]);
        assert_eq!(t.lost(), 1997);
    }
}
