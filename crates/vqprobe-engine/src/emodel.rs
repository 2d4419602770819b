//! ITU-T G.107 E-model (narrowband) and its G.107.1 wideband variant.
//!
//! Pure math, no I/O: callers hand in a [`G107Params`] and get a [`Breakdown`]
//! of every intermediate term, so a score can be attributed to noise, echo,
//! delay or loss instead of being trusted blindly. Formulas and the test
//! vectors come from `reference/ALGORITHMS.md` §1–§3 and §7.
//!
//! Every public function is total: NaN, infinities and out-of-range inputs are
//! clamped (see [`G107Params::sanitized`]) so no input can produce NaN or
//! panic. A probe fed garbage must still report a number it can defend.

use serde::{Deserialize, Serialize};

/// Ceiling of the narrowband Ie,eff term: the "95" of G.107 eq. 7-29.
const IE_CEILING_NB: f64 = 95.0;

/// Ceiling of the wideband Ie,eff term.
///
/// ALGORITHMS.md §8 lists the G.107.1 Ie,eff,WB formula as not found. We keep
/// eq. 7-29 but rescale its 95 to the wideband Ro of 129. With 95, total loss
/// would leave R,WB = 129 − 95 = 34 (MOS ≈ 1.6), which is absurd for silence.
/// With 129, total loss gives R ≈ 0, as the narrowband model does.
const IE_CEILING_WB: f64 = 129.0;

/// G.107.1 basic signal-to-noise ratio on the wideband scale.
const RO_WB: f64 = 129.0;

/// G.107.1 scale factor between the wideband and narrowband R scales.
const WB_SCALE: f64 = 1.29;

/// G.107.1 Table 1 receive-side noise floor (G.107 uses −64).
const NFOR_WB: f64 = -96.0;

/// Longest delay we feed the formulas with. Real paths never get near it, and
/// the delay terms have flattened out long before.
const MAX_DELAY_MS: f64 = 60_000.0;

/// Largest BurstR we accept. Beyond it Ppl/BurstR is effectively zero anyway.
const MAX_BURST_R: f64 = 1_000.0;

/// Which R scale the model runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// ITU-T G.107: R tops out at 93.2 with default terminals, MOS from R.
    #[default]
    Narrowband,
    /// ITU-T G.107.1: Ro = 129, Is = 0, Idd ×1.29, wideband TERV and Re,
    /// MOS from R/1.29. Use [`G107Params::wideband`] so that Nfor is the
    /// G.107.1 default too.
    Wideband,
}

/// All E-model inputs, with the G.107 Table 3 defaults in [`Default`].
///
/// Delays are in ms, levels in dB as G.107 defines them, `ppl_percent` in
/// percent (0–100). A probe sets `t_ms = ta_ms` = one-way mouth-to-ear delay
/// and `tr_ms = 2·ta_ms`; [`G107Params::for_path`] does that. When
/// deserialised, missing fields take their Table 3 defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct G107Params {
    /// R scale to compute on.
    pub scale: Scale,
    /// Send loudness rating SLR (dB).
    pub slr: f64,
    /// Receive loudness rating RLR (dB).
    pub rlr: f64,
    /// Sidetone masking rating STMR (dB).
    pub stmr: f64,
    /// Listener sidetone rating LSTR (dB).
    pub lstr: f64,
    /// D-value of the telephone, send side.
    pub ds: f64,
    /// D-value of the telephone, receive side. Kept for completeness: the
    /// formulas take LSTR directly, which already includes it (LSTR = STMR + Dr).
    pub dr: f64,
    /// Talker echo loudness rating TELR (dB).
    pub telr: f64,
    /// Weighted echo path loss WEPL (dB).
    pub wepl: f64,
    /// Mean one-way delay of the echo path T (ms).
    pub t_ms: f64,
    /// Round-trip delay in a 4-wire loop Tr (ms).
    pub tr_ms: f64,
    /// Absolute (mouth-to-ear) delay Ta (ms).
    pub ta_ms: f64,
    /// Number of quantisation distortion units qdu.
    pub qdu: f64,
    /// Equipment impairment factor Ie of the codec.
    pub ie: f64,
    /// Packet-loss robustness factor Bpl of the codec.
    pub bpl: f64,
    /// Random packet-loss probability Ppl, in percent.
    pub ppl_percent: f64,
    /// Burst ratio BurstR (1 = random loss, > 1 = bursty).
    pub burst_r: f64,
    /// Circuit noise Nc referred to the 0 dBr point (dBm0p).
    pub nc: f64,
    /// Noise floor at the receive side Nfor (dBmp).
    pub nfor: f64,
    /// Room noise at the send side Ps (dB(A)).
    pub ps: f64,
    /// Room noise at the receive side Pr (dB(A)).
    pub pr: f64,
    /// Advantage factor A.
    pub a: f64,
    /// Minimum perceivable delay mT of the delay-sensitivity class (ms).
    pub mt_ms: f64,
    /// Delay sensitivity sT of the delay-sensitivity class.
    pub st: f64,
}

impl Default for G107Params {
    /// G.107 Table 3 defaults (narrowband, zero delay, no loss): R = 93.2.
    fn default() -> Self {
        Self {
            scale: Scale::Narrowband,
            slr: 8.0,
            rlr: 2.0,
            stmr: 15.0,
            lstr: 18.0,
            ds: 3.0,
            dr: 3.0,
            telr: 65.0,
            wepl: 110.0,
            t_ms: 0.0,
            tr_ms: 0.0,
            ta_ms: 0.0,
            qdu: 1.0,
            ie: 0.0,
            bpl: 4.3,
            ppl_percent: 0.0,
            burst_r: 1.0,
            nc: -70.0,
            nfor: -64.0,
            ps: 35.0,
            pr: 35.0,
            a: 0.0,
            mt_ms: 100.0,
            st: 1.0,
        }
    }
}

impl G107Params {
    /// G.107.1 defaults: the Table 3 terminal values with the wideband scale
    /// and Nfor = −96 dBmp (G.107.1 Table 1).
    pub fn wideband() -> Self {
        Self {
            scale: Scale::Wideband,
            nfor: NFOR_WB,
            ..Self::default()
        }
    }

    /// Narrowband defaults for a probed path: T = Ta = `ta_ms`, Tr = 2·Ta
    /// (symmetric path, echo coupled at the far end), plus the codec's Ie/Bpl
    /// and the observed loss.
    pub fn for_path(ta_ms: f64, ie: f64, bpl: f64, ppl_percent: f64, burst_r: f64) -> Self {
        Self::default().with_path(ta_ms, ie, bpl, ppl_percent, burst_r)
    }

    /// Like [`G107Params::for_path`] but on the G.107.1 wideband scale; `ie`
    /// and `bpl` must then be wideband values (Ie,WB, Bpl,WB).
    pub fn for_path_wideband(
        ta_ms: f64,
        ie: f64,
        bpl: f64,
        ppl_percent: f64,
        burst_r: f64,
    ) -> Self {
        Self::wideband().with_path(ta_ms, ie, bpl, ppl_percent, burst_r)
    }

    fn with_path(self, ta_ms: f64, ie: f64, bpl: f64, ppl_percent: f64, burst_r: f64) -> Self {
        Self {
            t_ms: ta_ms,
            tr_ms: 2.0 * ta_ms,
            ta_ms,
            ie,
            bpl,
            ppl_percent,
            burst_r,
            ..self
        }
    }

    /// A copy with every input forced into a range where the formulas stay
    /// finite. [`compute`] applies this itself.
    ///
    /// - Any NaN or infinite terminal/noise parameter falls back to its
    ///   Table 3 default; finite ones are clamped to bands that contain the
    ///   Table 3 permitted ranges with room to spare (the STMR < 9 and > 20
    ///   rules stay reachable). Beyond those bands the powers in No and Ist
    ///   overflow.
    /// - Delays: NaN or negative → 0, capped at 60 s.
    /// - Ppl: NaN or negative → 0 (no loss), capped at 100 %.
    /// - BurstR: NaN or below 1 → 1 (random loss; G.107 defines 1 as the
    ///   floor), capped at 1000.
    /// - Bpl: NaN, infinite or ≤ 0 → the G.107 default 4.3, i.e. a codec
    ///   without loss concealment (the least forgiving standard value).
    /// - Ie: NaN → 0, clamped to [0, 95] (narrowband) or [0, 129] (wideband).
    /// - qdu: NaN or below 1 → 1 (G.711 itself is one qdu).
    /// - A: clamped to [0, 20], the G.107 range; a probe should leave it 0.
    pub fn sanitized(&self) -> Self {
        let d = Self::default();
        let ceiling = match self.scale {
            Scale::Narrowband => IE_CEILING_NB,
            Scale::Wideband => IE_CEILING_WB,
        };
        Self {
            scale: self.scale,
            slr: band(self.slr, d.slr, -20.0, 40.0),
            rlr: band(self.rlr, d.rlr, -20.0, 40.0),
            stmr: band(self.stmr, d.stmr, 0.0, 40.0),
            lstr: band(self.lstr, d.lstr, 0.0, 40.0),
            ds: band(self.ds, d.ds, -10.0, 10.0),
            dr: band(self.dr, d.dr, -10.0, 10.0),
            telr: band(self.telr, d.telr, 0.0, 100.0),
            wepl: band(self.wepl, d.wepl, 0.0, 150.0),
            t_ms: delay(self.t_ms),
            tr_ms: delay(self.tr_ms),
            ta_ms: delay(self.ta_ms),
            qdu: band(self.qdu, d.qdu, 1.0, 100.0),
            ie: band(self.ie, 0.0, 0.0, ceiling),
            bpl: sane_bpl(self.bpl),
            ppl_percent: sane_ppl(self.ppl_percent),
            burst_r: sane_burst_r(self.burst_r),
            nc: band(self.nc, d.nc, -120.0, 0.0),
            nfor: band(self.nfor, d.nfor, -120.0, 0.0),
            ps: band(self.ps, d.ps, 0.0, 120.0),
            pr: band(self.pr, d.pr, 0.0, 120.0),
            a: band(self.a, d.a, 0.0, 20.0),
            mt_ms: band(self.mt_ms, d.mt_ms, 1.0, 1_000.0),
            st: band(self.st, d.st, 0.1, 10.0),
        }
    }
}

/// Every intermediate term of one E-model evaluation.
///
/// On the wideband scale `ro` is 129 and `iolr`, `ist`, `iq`, `is` are 0
/// (G.107.1 sets Is = 0); `no` is still computed because Idte,WB needs it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Breakdown {
    /// Scale the figures are on.
    pub scale: Scale,
    /// Total noise power No (dBm0p).
    pub no: f64,
    /// Basic signal-to-noise ratio Ro.
    pub ro: f64,
    /// Impairment from too-low overall loudness Iolr.
    pub iolr: f64,
    /// Non-optimum sidetone impairment Ist.
    pub ist: f64,
    /// Quantising distortion impairment Iq.
    pub iq: f64,
    /// Simultaneous impairment Is = Iolr + Ist + Iq.
    pub is: f64,
    /// Talker echo impairment Idte.
    pub idte: f64,
    /// Listener echo impairment Idle.
    pub idle: f64,
    /// Pure delay impairment Idd.
    pub idd: f64,
    /// Delay impairment Id = Idte + Idle + Idd.
    pub id: f64,
    /// Effective equipment impairment Ie,eff (codec plus loss).
    pub ie_eff: f64,
    /// Transmission rating R = Ro − Is − Id − Ie,eff + A (not clamped).
    pub r: f64,
    /// MOS-CQE from R for this scale, in [1, 4.5].
    pub mos: f64,
}

/// Evaluates the E-model on the scale `p.scale` names, after
/// [`G107Params::sanitized`].
pub fn compute(p: &G107Params) -> Breakdown {
    let p = p.sanitized();
    match p.scale {
        Scale::Narrowband => compute_narrowband(&p),
        Scale::Wideband => compute_wideband_scale(&p),
    }
}

/// Evaluates `p` on the G.107.1 wideband scale whatever `p.scale` says.
/// Prefer building `p` with [`G107Params::wideband`] so Nfor is −96.
pub fn compute_wideband(p: &G107Params) -> Breakdown {
    compute(&G107Params {
        scale: Scale::Wideband,
        ..*p
    })
}

fn compute_narrowband(p: &G107Params) -> Breakdown {
    let no = noise(p);
    let ro = 15.0 - 1.5 * (p.slr + no);
    let iolr = iolr(p, no);
    let ist = ist(p);
    let iq = iq(p, ro);
    let is = iolr + ist + iq;

    let terv = terv_nb(p.telr, p.t_ms);
    // G.107 §7.4: with little sidetone masking the echo is heard through it.
    let terv = if p.stmr < 9.0 { terv + ist / 2.0 } else { terv };
    let re = 80.0 + 2.5 * (terv - 14.0);
    let mut idte = idte(-1.5 * (no - p.rlr), re, p.t_ms);
    // G.107 §7.4: above 20 dB the sidetone term joins the echo term.
    if p.stmr > 20.0 {
        idte = (idte * idte + ist * ist).sqrt();
    }
    let idle = idle(ro, p.wepl, p.tr_ms);
    let idd = idd(p.ta_ms, p.mt_ms, p.st);
    let id = idte + idle + idd;
    let ie_eff = ie_eff(p.ie, p.bpl, p.ppl_percent, p.burst_r, IE_CEILING_NB);
    let r = ro - is - id - ie_eff + p.a;
    Breakdown {
        scale: Scale::Narrowband,
        no,
        ro,
        iolr,
        ist,
        iq,
        is,
        idte,
        idle,
        idd,
        id,
        ie_eff,
        r,
        mos: mos_from_r(r),
    }
}

fn compute_wideband_scale(p: &G107Params) -> Breakdown {
    // G.107.1 leaves No,WB for further study, yet Roe needs it; we take the
    // G.107 noise sum at the caller's (normally G.107.1 Table 1) values.
    let no = noise(p);
    let ro = RO_WB;
    let t = p.t_ms;
    let k = if t < 100.0 { 0.08 * t + 10.0 } else { 18.0 };
    let terv = terv_nb(p.telr, t) + k;
    let re = 80.0 + 3.0 * (terv - 14.0);
    let idte = idte(-1.5 * (no - p.rlr), re, t);
    let idle = idle(ro, p.wepl, p.tr_ms);
    let idd = WB_SCALE * idd(p.ta_ms, p.mt_ms, p.st);
    let id = idte + idle + idd;
    let ie_eff = ie_eff(p.ie, p.bpl, p.ppl_percent, p.burst_r, IE_CEILING_WB);
    let r = ro - id - ie_eff + p.a;
    Breakdown {
        scale: Scale::Wideband,
        no,
        ro,
        iolr: 0.0,
        ist: 0.0,
        iq: 0.0,
        is: 0.0,
        idte,
        idle,
        idd,
        id,
        ie_eff,
        r,
        mos: mos_from_r_wideband(r),
    }
}

/// Total noise power No: power sum of circuit noise, the send and receive
/// room-noise equivalents and the receive noise floor.
fn noise(p: &G107Params) -> f64 {
    let olr = p.slr + p.rlr;
    let nos = p.ps - p.slr - p.ds - 100.0 + 0.004 * sq(p.ps - olr - p.ds - 14.0);
    let pre = p.pr + 10.0 * (1.0 + 10f64.powf((10.0 - p.lstr) / 10.0)).log10();
    let nor = p.rlr - 121.0 + pre + 0.008 * sq(pre - 35.0);
    let nfo = p.nfor + p.rlr;
    10.0 * (db_power(p.nc) + db_power(nos) + db_power(nor) + db_power(nfo)).log10()
}

fn iolr(p: &G107Params, no: f64) -> f64 {
    let x = (p.slr + p.rlr + 0.2 * (64.0 + no - p.rlr)) / 8.0;
    20.0 * ((1.0 + x.powi(8)).powf(1.0 / 8.0) - x)
}

fn ist(p: &G107Params) -> f64 {
    // The talker echo leaks into the sidetone path, damped by e^(−T/4).
    let stmro = -10.0
        * (10f64.powf(-p.stmr / 10.0) + (-p.t_ms / 4.0).exp() * 10f64.powf(-p.telr / 10.0)).log10();
    12.0 * (1.0 + ((stmro - 13.0) / 6.0).powi(8)).powf(1.0 / 8.0)
        - 28.0 * (1.0 + ((stmro + 1.0) / 19.4).powi(35)).powf(1.0 / 35.0)
        - 13.0 * (1.0 + ((stmro - 3.0) / 33.0).powi(13)).powf(1.0 / 13.0)
        + 29.0
}

fn iq(p: &G107Params, ro: f64) -> f64 {
    let q = 37.0 - 15.0 * p.qdu.log10();
    let g = 1.07 + 0.258 * q + 0.0602 * q * q;
    let y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0;
    let z = 46.0 / 30.0 - g / 40.0;
    15.0 * (1.0 + 10f64.powf(y) + 10f64.powf(z)).log10()
}

/// Narrowband TERV; the wideband one adds its K correction on top.
fn terv_nb(telr: f64, t: f64) -> f64 {
    telr - 40.0 * ((1.0 + t / 10.0) / (1.0 + t / 150.0)).log10() + 6.0 * (-0.3 * t * t).exp()
}

fn idte(roe: f64, re: f64, t: f64) -> f64 {
    let d = roe - re;
    (d / 2.0 + (d * d / 4.0 + 100.0).sqrt() - 1.0) * (1.0 - (-t).exp())
}

fn idle(ro: f64, wepl: f64, tr: f64) -> f64 {
    let rle = 10.5 * (wepl + 7.0) * (tr + 1.0).powf(-0.25);
    let d = ro - rle;
    d / 2.0 + (d * d / 4.0 + 169.0).sqrt()
}

fn idd(ta: f64, mt: f64, st: f64) -> f64 {
    if ta <= mt {
        return 0.0;
    }
    let x = (ta / mt).log2();
    let e = 6.0 * st;
    25.0 * ((1.0 + x.powf(e)).powf(1.0 / e) - 3.0 * (1.0 + (x / 3.0).powf(e)).powf(1.0 / e) + 2.0)
}

/// Ie,eff = Ie + (ceiling − Ie)·Ppl/(Ppl/BurstR + Bpl); inputs already sane.
fn ie_eff(ie: f64, bpl: f64, ppl: f64, burst_r: f64, ceiling: f64) -> f64 {
    if ppl <= 0.0 {
        // Also keeps 0/0 out when Bpl is tiny.
        return ie;
    }
    ie + (ceiling - ie) * ppl / (ppl / burst_r + bpl)
}

/// Narrowband R → MOS-CQE (G.107 Annex B), clamped to [1, 4.5].
///
/// The cubic dips to 0.9888 near R ≈ 3.2 before climbing back to 1 at
/// R ≈ 6.52, hence the clamp on the result and not only on R. NaN maps to 1:
/// an unknown rating must not look good.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r < 0.0 {
        return 1.0;
    }
    if r > 100.0 {
        return 4.5;
    }
    let mos = 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6;
    mos.clamp(1.0, 4.5)
}

/// Wideband R (0–129 scale) → MOS-CQE: G.107.1 Annex A, the narrowband
/// polynomial applied to R/1.29.
pub fn mos_from_r_wideband(r: f64) -> f64 {
    mos_from_r(r / WB_SCALE)
}

/// MOS → narrowband R (G.107 Appendix I), the inverse of [`mos_from_r`].
///
/// MOS is clamped to [1, 4.5] first (outside it the square root goes
/// negative), and NaN is read as 1. MOS 1 maps to R ≈ 6.52, the upper root,
/// because the polynomial is not one-to-one below it.
pub fn r_from_mos(mos: f64) -> f64 {
    let m = if mos.is_nan() {
        1.0
    } else {
        mos.clamp(1.0, 4.5)
    };
    let disc = (-903_522.0 + 1_113_960.0 * m - 202_500.0 * m * m).max(0.0);
    let y = 15.0 * disc.sqrt();
    let x = 18_566.0 - 6_750.0 * m;
    // ITU prints arctan2(x, y) in the opposite argument order; atan2(y, x)
    // is the one that round-trips.
    let h = y.atan2(x) / 3.0;
    (20.0 / 3.0) * (8.0 - 226f64.sqrt() * (h + std::f64::consts::FRAC_PI_3).cos())
}

/// Simplified probe form (ALGORITHMS.md §1): R = 93.2 − Id − Ie,eff with
/// Id = 0.024·Ta + 0.11·(Ta − 177.3)·H(Ta − 177.3). Inputs are sanitised
/// as in [`G107Params::sanitized`].
pub fn simplified_r(ta_ms: f64, ie: f64, bpl: f64, ppl_percent: f64, burst_r: f64) -> f64 {
    let ta = delay(ta_ms);
    let knee = (ta - 177.3).max(0.0);
    let id = 0.024 * ta + 0.11 * knee;
    let ie = band(ie, 0.0, 0.0, IE_CEILING_NB);
    let ie_eff = ie_eff(
        ie,
        sane_bpl(bpl),
        sane_ppl(ppl_percent),
        sane_burst_r(burst_r),
        IE_CEILING_NB,
    );
    93.2 - id - ie_eff
}

/// BurstR from the transition counts of a 2-state Markov loss model, counted
/// over consecutive packets in playout order (R = received, L = lost):
/// BurstR = 1/(p + q) with p = n_RL/(n_RR + n_RL), q = n_LR/(n_LR + n_LL).
///
/// `None` when either probability is undefined: no loss at all (use 1, random)
/// or nothing received. Estimates below 1 ("more spread out than random",
/// e.g. alternating losses) are clamped up to 1 as loom does; G.107 treats
/// 1 as the floor and its validated range is 1–8.
pub fn burst_r_from_counts(n_rr: u64, n_rl: u64, n_lr: u64, n_ll: u64) -> Option<f64> {
    let from_r = n_rr.checked_add(n_rl)?;
    let from_l = n_lr.checked_add(n_ll)?;
    if from_r == 0 || from_l == 0 {
        return None;
    }
    let p = n_rl as f64 / from_r as f64;
    let q = n_lr as f64 / from_l as f64;
    let sum = p + q;
    if sum <= 0.0 {
        // Both states absorbing: no transition was ever seen to estimate from.
        return None;
    }
    Some((1.0 / sum).max(1.0))
}

/// BurstR from the mean loss-run length: mean run × (1 − Ppl/100), the run
/// form of the Markov estimate. Non-finite or sub-1 results (including a
/// mean run below 1 or Ppl ≥ 100) are clamped to 1, as in
/// [`burst_r_from_counts`].
pub fn burst_r_from_runs(mean_run_len: f64, ppl_percent: f64) -> f64 {
    let ppl = sane_ppl(ppl_percent);
    let b = mean_run_len * (1.0 - ppl / 100.0);
    if b.is_finite() {
        b.clamp(1.0, MAX_BURST_R)
    } else {
        1.0
    }
}

fn sq(x: f64) -> f64 {
    x * x
}

fn db_power(x: f64) -> f64 {
    10f64.powf(x / 10.0)
}

/// `v` clamped to [lo, hi], or `default` when `v` is not finite.
fn band(v: f64, default: f64, lo: f64, hi: f64) -> f64 {
    if v.is_finite() {
        v.clamp(lo, hi)
    } else {
        default
    }
}

/// `v` clamped to [lo, hi]; NaN (which `clamp` would pass through) goes to
/// `lo`, the "nothing measured" end for delay, loss and burstiness.
fn clamp_nan_low(v: f64, lo: f64, hi: f64) -> f64 {
    if v.is_nan() {
        lo
    } else {
        v.clamp(lo, hi)
    }
}

fn delay(ms: f64) -> f64 {
    clamp_nan_low(ms, 0.0, MAX_DELAY_MS)
}

fn sane_ppl(ppl: f64) -> f64 {
    clamp_nan_low(ppl, 0.0, 100.0)
}

fn sane_burst_r(b: f64) -> f64 {
    clamp_nan_low(b, 1.0, MAX_BURST_R)
}

fn sane_bpl(bpl: f64) -> f64 {
    if bpl.is_finite() && bpl > 0.0 {
        bpl
    } else {
        G107Params::default().bpl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The vectors carry 6 decimals, so 1e-6 leaves room only for their rounding.
    const TOL: f64 = 1e-6;

    fn close(actual: f64, expected: f64, tol: f64, what: &str) {
        assert!(
            (actual - expected).abs() <= tol,
            "{what}: got {actual:.9}, want {expected:.9} (±{tol})"
        );
    }

    #[test]
    fn default_breakdown_matches_reference() {
        let b = compute(&G107Params::default());
        close(b.no, -61.179214, TOL, "No");
        close(b.ro, 94.768822, TOL, "Ro");
        close(b.iolr, 0.440178, TOL, "Iolr");
        close(b.ist, -0.000715, TOL, "Ist");
        close(b.iq, 0.974105, TOL, "Iq");
        close(b.is, 1.413568, TOL, "Is");
        close(b.idte, 0.0, TOL, "Idte");
        close(b.idle, 0.149046, TOL, "Idle");
        close(b.idd, 0.0, TOL, "Idd");
        close(b.ie_eff, 0.0, TOL, "Ie,eff");
        close(b.r, 93.206208, TOL, "R");
        close(b.mos, 4.409406, TOL, "MOS");
        close(mos_from_r(93.2), 4.409286, TOL, "MOS(93.2)");
    }

    #[test]
    fn table_a_delay_without_loss() {
        // Ta, Idte, Idle, Idd, R, MOS
        let rows = [
            (0.0, 0.0, 0.149046, 0.0, 93.206208, 4.409406),
            (100.0, 1.963791, 0.727733, 0.0, 90.663730, 4.354920),
            (150.0, 2.811844, 0.840747, 0.163531, 89.539132, 4.327546),
            (200.0, 3.570849, 0.935273, 3.044414, 85.804718, 4.223180),
            (250.0, 4.242856, 1.018587, 8.916710, 79.177101, 3.992519),
            (300.0, 4.833940, 1.094259, 14.760695, 72.666360, 3.719431),
            (400.0, 5.808211, 1.230127, 24.070089, 62.246827, 3.215599),
        ];
        for (ta, idte, idle, idd, r, mos) in rows {
            let b = compute(&G107Params::for_path(ta, 0.0, 4.3, 0.0, 1.0));
            let w = format!("Ta={ta}");
            close(b.idte, idte, TOL, &format!("{w} Idte"));
            close(b.idle, idle, TOL, &format!("{w} Idle"));
            close(b.idd, idd, TOL, &format!("{w} Idd"));
            close(b.r, r, TOL, &format!("{w} R"));
            close(b.mos, mos, TOL, &format!("{w} MOS"));
        }
    }

    #[test]
    fn table_b_loss_at_zero_delay() {
        // Ie, Bpl, Ppl, BurstR, Ie,eff, R, MOS
        let rows = [
            (0.0, 25.1, 1.0, 1.0, 3.639847, 89.566361, 4.328232),
            (0.0, 25.1, 2.0, 1.0, 7.011070, 86.195138, 4.235019),
            (0.0, 25.1, 5.0, 1.0, 15.780731, 77.425477, 3.923091),
            (0.0, 25.1, 5.0, 2.0, 17.210145, 75.996063, 3.864123),
            (0.0, 25.1, 10.0, 1.0, 27.065527, 66.140681, 3.411187),
            (0.0, 4.3, 1.0, 1.0, 17.924528, 75.281679, 3.833916),
            (11.0, 19.0, 2.0, 1.0, 19.0, 74.206208, 3.787558),
            (15.0, 16.1, 1.0, 1.0, 19.678363, 73.527845, 3.757793),
        ];
        for (ie, bpl, ppl, burst_r, ie_eff, r, mos) in rows {
            let b = compute(&G107Params::for_path(0.0, ie, bpl, ppl, burst_r));
            let w = format!("Ie={ie} Bpl={bpl} Ppl={ppl} BurstR={burst_r}");
            close(b.ie_eff, ie_eff, TOL, &format!("{w} Ie,eff"));
            close(b.r, r, TOL, &format!("{w} R"));
            close(b.mos, mos, TOL, &format!("{w} MOS"));
        }
    }

    #[test]
    fn table_c_simplified_form() {
        // Ta, Ie, Bpl, Ppl, BurstR, R, MOS
        let rows = [
            (0.0, 0.0, 25.1, 0.0, 1.0, 93.2, 4.409286),
            (150.0, 0.0, 25.1, 0.0, 1.0, 89.6, 4.329077),
            (200.0, 0.0, 25.1, 0.0, 1.0, 85.903, 4.226180),
            (300.0, 0.0, 25.1, 0.0, 1.0, 72.503, 3.712088),
            (400.0, 0.0, 25.1, 0.0, 1.0, 59.103, 3.053428),
            (50.0, 0.0, 25.1, 2.0, 1.0, 84.988930, 4.197774),
            (150.0, 11.0, 19.0, 2.0, 1.5, 70.337705, 3.612798),
        ];
        for (ta, ie, bpl, ppl, burst_r, r, mos) in rows {
            let got = simplified_r(ta, ie, bpl, ppl, burst_r);
            let w = format!("Ta={ta} Ie={ie} Ppl={ppl}");
            close(got, r, TOL, &format!("{w} R"));
            close(mos_from_r(got), mos, TOL, &format!("{w} MOS"));
        }
    }

    #[test]
    fn table_d_r_to_mos() {
        // These are exact values of the cubic.
        let rows = [
            (50.0, 2.575),
            (60.0, 3.1),
            (70.0, 3.597),
            (80.0, 4.024),
            (90.0, 4.339),
        ];
        for (r, mos) in rows {
            close(mos_from_r(r), mos, 1e-9, &format!("R={r}"));
        }
    }

    #[test]
    fn params_deserialise_with_defaults() {
        let p: Result<G107Params, _> = serde_json::from_str(r#"{"ta_ms": 150, "ie": 11}"#);
        let p = p.map_err(|e| e.to_string());
        let want = G107Params {
            ta_ms: 150.0,
            ie: 11.0,
            ..G107Params::default()
        };
        assert_eq!(p, Ok(want));
    }

    #[test]
    fn mos_clamps() {
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(f64::NAN), 1.0);
        assert_eq!(mos_from_r(120.0), 4.5);
        assert_eq!(mos_from_r(f64::INFINITY), 4.5);
        // The cubic's dip below 1 near R = 3.22 must not leak out.
        assert_eq!(mos_from_r(3.22), 1.0);
        close(mos_from_r(100.0), 4.5, 1e-12, "R=100");
    }

    #[test]
    fn inverse_round_trips() {
        let mut m = 1.5;
        while m <= 4.4 + 1e-9 {
            let r = r_from_mos(m);
            close(mos_from_r(r), m, 1e-6, &format!("MOS={m}"));
            m += 0.01;
        }
        close(r_from_mos(4.5), 100.0, 1e-6, "MOS 4.5");
        close(r_from_mos(1.0), 6.5153, 1e-3, "MOS 1");
        assert!(r_from_mos(f64::NAN).is_finite());
        assert!(r_from_mos(9.0).is_finite());
        assert!(r_from_mos(-3.0).is_finite());
    }

    #[test]
    fn wideband_clean_path() {
        let b = compute(&G107Params::wideband());
        assert_eq!(b.scale, Scale::Wideband);
        close(b.ro, 129.0, 1e-12, "Ro,WB");
        close(b.is, 0.0, 1e-12, "Is,WB");
        close(b.r, 128.846315, TOL, "R,WB");
        close(b.mos, 4.499152, TOL, "MOS,WB");
        let same = compute_wideband(&G107Params::wideband());
        assert_eq!(b, same);
    }

    #[test]
    fn wideband_delay_and_loss_hurt() {
        let clean = compute(&G107Params::wideband());
        let late = compute(&G107Params::for_path_wideband(300.0, 0.0, 4.3, 0.0, 1.0));
        assert!(late.idd > 0.0 && late.idte > 0.0 && late.r < clean.r);
        // Idd,WB is 1.29 × the narrowband Idd.
        let nb = compute(&G107Params::for_path(300.0, 0.0, 4.3, 0.0, 1.0));
        close(late.idd, 1.29 * nb.idd, 1e-9, "Idd,WB");
        let total_loss = compute(&G107Params::for_path_wideband(0.0, 0.0, 4.3, 100.0, 1.0));
        assert!(total_loss.mos < 1.1, "total loss MOS {}", total_loss.mos);
    }

    #[test]
    fn sidetone_rules_apply() {
        let base = G107Params::for_path(150.0, 0.0, 4.3, 0.0, 1.0);
        let low = compute(&G107Params { stmr: 7.0, ..base });
        // STMR < 9: TERV + Ist/2 replaces TERV, so Idte changes with Ist.
        let b = compute(&base);
        assert!((low.idte - b.idte).abs() > 1e-6);
        // STMR > 20: Idte = sqrt(Idte² + Ist²) >= |Ist|.
        let high = compute(&G107Params { stmr: 22.0, ..base });
        assert!(high.idte >= high.ist.abs() - 1e-12);
        assert!(high.r.is_finite() && low.r.is_finite());
    }

    #[test]
    fn table_e_burst_r() {
        // 60 packets, seq 10 and 20–22 lost; count transitions in play order.
        let lost: Vec<bool> = (0..60).map(|s| s == 10 || (20..=22).contains(&s)).collect();
        let (mut rr, mut rl, mut lr, mut ll) = (0, 0, 0, 0);
        for w in lost.windows(2) {
            match (w[0], w[1]) {
                (false, false) => rr += 1,
                (false, true) => rl += 1,
                (true, false) => lr += 1,
                (true, true) => ll += 1,
            }
        }
        assert_eq!((rr, rl, lr, ll), (53, 2, 2, 2));
        let b = burst_r_from_counts(rr, rl, lr, ll);
        close(b.unwrap_or(f64::NAN), 1.864407, TOL, "BurstR Markov");

        let n_lost = lost.iter().filter(|l| **l).count() as f64;
        let ppl = 100.0 * n_lost / 60.0;
        close(ppl, 6.6667, 1e-4, "Ppl");
        // Runs: [1, 3] → mean 2.
        close(burst_r_from_runs(2.0, ppl), 1.866667, TOL, "BurstR runs");
    }

    #[test]
    fn burst_r_edge_cases() {
        assert_eq!(burst_r_from_counts(100, 0, 0, 0), None, "no loss");
        assert_eq!(burst_r_from_counts(0, 0, 0, 5), None, "nothing received");
        assert_eq!(burst_r_from_counts(10, 0, 0, 10), None, "no transitions");
        // Alternating loss: p = 1, q = 1 → 0.5, clamped to 1.
        assert_eq!(burst_r_from_counts(0, 5, 5, 0), Some(1.0));
        assert_eq!(burst_r_from_counts(u64::MAX, 1, 1, 0), None);
        assert_eq!(burst_r_from_runs(f64::NAN, 5.0), 1.0);
        assert_eq!(burst_r_from_runs(0.5, 5.0), 1.0);
        assert_eq!(burst_r_from_runs(3.0, 100.0), 1.0);
        assert_eq!(burst_r_from_runs(f64::INFINITY, 1.0), 1.0);
    }

    #[test]
    fn hostile_inputs_stay_finite() {
        let bad = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            0.0,
            1e300,
            -1e300,
        ];
        for &v in &bad {
            let p = G107Params::for_path(v, v, v, v, v);
            for scale in [Scale::Narrowband, Scale::Wideband] {
                let b = compute(&G107Params { scale, ..p });
                assert!(b.r.is_finite(), "R for {v}: {b:?}");
                assert!((1.0..=4.5).contains(&b.mos));
            }
            assert!(simplified_r(v, v, v, v, v).is_finite());
        }
        // Negative / NaN Ppl means no loss, BurstR ≤ 0 means random loss.
        let clean = compute(&G107Params::for_path(0.0, 0.0, 25.1, 0.0, 1.0));
        let neg = compute(&G107Params::for_path(0.0, 0.0, 25.1, -3.0, 0.0));
        assert_eq!(clean, neg);
        let bpl0 = compute(&G107Params::for_path(0.0, 0.0, 0.0, 1.0, 1.0));
        close(bpl0.ie_eff, 17.924528, TOL, "Bpl 0 → 4.3");
    }

    #[test]
    fn every_parameter_at_its_band_edges_stays_finite() {
        // A deterministic LCG walk over the sanitising bands, edges included:
        // the bands are only safe if no corner overflows.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut pick = |lo: f64, hi: f64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            match state >> 61 {
                0 => lo,
                1 => hi,
                _ => lo + (hi - lo) * ((state >> 11) as f64 / (1u64 << 53) as f64),
            }
        };
        for i in 0..20_000 {
            let p = G107Params {
                scale: if i % 2 == 0 {
                    Scale::Narrowband
                } else {
                    Scale::Wideband
                },
                slr: pick(-20.0, 40.0),
                rlr: pick(-20.0, 40.0),
                stmr: pick(0.0, 40.0),
                lstr: pick(0.0, 40.0),
                ds: pick(-10.0, 10.0),
                dr: pick(-10.0, 10.0),
                telr: pick(0.0, 100.0),
                wepl: pick(0.0, 150.0),
                t_ms: pick(0.0, MAX_DELAY_MS),
                tr_ms: pick(0.0, MAX_DELAY_MS),
                ta_ms: pick(0.0, MAX_DELAY_MS),
                qdu: pick(1.0, 100.0),
                ie: pick(0.0, 129.0),
                bpl: pick(1e-9, 1e9),
                ppl_percent: pick(0.0, 100.0),
                burst_r: pick(1.0, MAX_BURST_R),
                nc: pick(-120.0, 0.0),
                nfor: pick(-120.0, 0.0),
                ps: pick(0.0, 120.0),
                pr: pick(0.0, 120.0),
                a: pick(0.0, 20.0),
                mt_ms: pick(1.0, 1_000.0),
                st: pick(0.1, 10.0),
            };
            let b = compute(&p);
            let all = [
                b.no, b.ro, b.iolr, b.ist, b.iq, b.is, b.idte, b.idle, b.idd, b.id, b.ie_eff, b.r,
                b.mos,
            ];
            assert!(all.iter().all(|v| v.is_finite()), "{p:?} → {b:?}");
        }
    }
}
