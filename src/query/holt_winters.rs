//! `holt_winters(agg, N, S)` and `holt_winters_with_fit(agg, N, S)`: InfluxDB 1.x's
//! damped Holt-Winters forecast of a group's aggregate windows (`query/functions.go`,
//! `FloatHoltWintersReducer`), fitted by its Nelder-Mead simplex (`query/neldermead`).
//!
//! Followed step for step, float operation for float operation, so that answers agree to
//! the last bit: the same grid of 16 starting guesses, the same simplex, and the same
//! quirks. 1.x's objective clamps alpha, beta, gamma and phi *in the vertex it is given*
//! and writes the seasonal ring buffer into it, so every evaluation changes the simplex;
//! each forecast step feeds on the previous forecast, not on the observed value; and
//! powers go through Go's `math.Pow` (repeated squaring of the mantissa), ported here as
//! [`go_pow`], since the platform's `pow` may round otherwise.

use super::error::QueryError;
use super::limits::QueryLimits;

/// The forecast's arguments: `h` points ahead, a season of `m` windows (none below 2),
/// and whether the fitted values over the input come first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct HoltWinters {
    pub(super) h: usize,
    pub(super) m: usize,
    pub(super) with_fit: bool,
}

// 1.x's starting guesses: a grid over alpha, beta, gamma and phi from 0.3 below 1.0 in
// steps of 0.4, and the weight of its initial level and trend.
const GUESS_LOWER: f64 = 0.3;
const GUESS_UPPER: f64 = 1.0;
const GUESS_STEP: f64 = 0.4;
const WEIGHT: f64 = 0.5;
const EPSILON: f64 = 1.0e-4;
const MAX_ITERATIONS: usize = 1000;

impl HoltWinters {
    fn seasonal(&self) -> bool {
        self.m >= 2
    }

    /// The forecast of `points` (time, value; in time order, windows `interval` apart):
    /// the points 1.x emits, NaN ones left out. Nothing for fewer than two points (or a
    /// season's worth), as in 1.x.
    /// The fit stops at the query's deadline, and what it holds counts against the
    /// query's memory.
    pub(super) fn forecast(
        &self,
        interval: i64,
        points: &[(i64, f64)],
        limits: &QueryLimits,
    ) -> Result<Vec<(i64, f64)>, QueryError> {
        if points.len() < 2 || self.seasonal() && points.len() < self.m || self.h == 0 {
            return Ok(Vec::new());
        }
        let round = |t: i64| {
            // 1.x's overflow-safe rounding to a multiple of the interval (ties down).
            if t % interval > interval / 2 {
                (t / interval + 1) * interval
            } else {
                (t / interval) * interval
            }
        };
        let (start, stop) = (round(points[0].0), round(points[points.len() - 1].0));
        if (stop - start) / interval <= 0 {
            return Ok(Vec::new());
        }
        let windows = ((stop - start) / interval) as usize + 1;
        let n = 6 + if self.seasonal() { self.m } else { 0 };
        let _held =
            limits.hold(((n + 1) * (n + 4) + 2 * windows + self.h) * std::mem::size_of::<f64>())?;
        // The values a window apart, NaN for a window without one; of several values
        // rounded into one window, the first.
        let mut y = vec![points[0].1];
        let mut t = start;
        for &(time, value) in &points[1..] {
            let rounded = round(time);
            if rounded <= t {
                continue;
            }
            t += interval;
            while rounded != t {
                y.push(f64::NAN);
                t += interval;
            }
            y.push(value);
        }
        let fit = Fit {
            y: &y,
            seasonal: self.seasonal(),
        };
        let m = self.m;
        let mut l0 = 0.0;
        let mut b0 = 0.0;
        let mut s = Vec::new();
        if fit.seasonal {
            // (1.x would index past the series here; windows never round together.)
            if y.len() < m {
                return Ok(Vec::new());
            }
            for &v in &y[..m] {
                if !v.is_nan() {
                    l0 += (1.0 / m as f64) * v;
                }
            }
            for i in 0..m {
                if m + i >= y.len() {
                    break;
                }
                if !y[i].is_nan() && !y[m + i].is_nan() {
                    b0 += 1.0 / (m * m) as f64 * (y[m + i] - y[i]);
                }
            }
            s = y[..m]
                .iter()
                .map(|&v| if v.is_nan() { 0.0 } else { v / l0 })
                .collect();
        } else {
            l0 += WEIGHT * y[0];
            if !y[1].is_nan() {
                b0 = WEIGHT * (y[1] - y[0]);
            }
        }
        let mut parameters = vec![0.0; 6 + s.len()];
        parameters[4] = l0;
        parameters[5] = b0;
        parameters[6..].copy_from_slice(&s);

        let mut min_sse = f64::INFINITY;
        let mut best: Option<Vec<f64>> = None;
        let mut alpha = GUESS_LOWER;
        while alpha < GUESS_UPPER {
            let mut beta = GUESS_LOWER;
            while beta < GUESS_UPPER {
                let mut gamma = GUESS_LOWER;
                while gamma < GUESS_UPPER {
                    let mut phi = GUESS_LOWER;
                    while phi < GUESS_UPPER {
                        limits.check_deadline()?;
                        parameters[..4].copy_from_slice(&[alpha, beta, gamma, phi]);
                        let (sse, params) = nelder_mead(&mut |p| fit.sse(p), &parameters);
                        if sse < min_sse || best.is_none() {
                            min_sse = sse;
                            best = Some(params);
                        }
                        phi += GUESS_STEP;
                    }
                    gamma += GUESS_STEP;
                }
                beta += GUESS_STEP;
            }
            alpha += GUESS_STEP;
        }
        let mut best = best.unwrap_or(parameters);
        let forecasted = fit.forecast(self.h, &mut best);
        let (first, skip, base) = if self.with_fit {
            (points[0].0, 0, 0)
        } else {
            (points[points.len() - 1].0, y.len(), 1)
        };
        Ok(forecasted[skip..]
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_nan())
            .map(|(i, &v)| (first + interval * (i as i64 + base), v))
            .collect())
    }
}

/// The series being fitted.
struct Fit<'a> {
    y: &'a [f64],
    seasonal: bool,
}

impl Fit<'_> {
    /// The fitted values over the series and `h` more: `params` (alpha, beta, gamma, phi,
    /// level, trend, then the seasonal factors) clamped and its factors overwritten, as
    /// 1.x leaves them.
    fn forecast(&self, h: usize, params: &mut [f64]) -> Vec<f64> {
        for p in &mut params[..4] {
            // (A NaN stays NaN, as in 1.x.)
            *p = p.clamp(0.0, 1.0);
        }
        let (alpha, beta, gamma, phi) = (params[0], params[1], params[2], params[3]);
        let mut y_t = self.y[0];
        let mut phi_h = phi;
        let mut l_t = params[4];
        let mut b_t = params[5];
        let m = params.len() - 6;
        let mut so = 0;
        if self.seasonal {
            if m == 1 {
                params[6] = 1.0;
            }
            so = m - 1;
        }
        let len = self.y.len() + h;
        let mut forecasted = vec![0.0; len];
        forecasted[0] = y_t;
        let (mut stm, mut stmh) = (1.0, 1.0);
        for t in 1..len {
            if self.seasonal {
                let hm = t % m;
                stm = params[6 + (t + so - m) % m];
                stmh = params[6 + (t + hm + so - m) % m];
            }
            let l_prev = l_t;
            let b_prev = b_t;
            l_t = alpha * (y_t / stm) + (1.0 - alpha) * (l_prev + phi * b_prev);
            b_t = beta * (l_t - l_prev) + (1.0 - beta) * phi * b_prev;
            let s_t = gamma * (y_t / (l_prev + phi * b_prev)) + (1.0 - gamma) * stm;
            y_t = (l_t + phi_h * b_t) * stmh;
            phi_h += go_pow(phi, t as f64);
            if self.seasonal {
                params[6 + (t + so) % m] = s_t;
                so += 1;
            }
            forecasted[t] = y_t;
        }
        forecasted
    }

    /// The sum of squared errors of the fit over the windows that have a value (infinite
    /// if the fit is NaN where one has).
    fn sse(&self, params: &mut [f64]) -> f64 {
        let forecasted = self.forecast(0, params);
        let mut sse = 0.0;
        for (f, y) in forecasted.iter().zip(self.y) {
            if y.is_nan() {
                continue;
            }
            if f.is_nan() {
                return f64::INFINITY;
            }
            let diff = f - y;
            sse += diff * diff;
        }
        sse
    }
}

/// 1.x's Nelder-Mead minimisation from `start` (reflection 1, contraction 0.5, expansion
/// 2, at most 1000 iterations, until the values' deviation falls below [`EPSILON`]): the
/// minimum and where it was found. `objective` may change the vertex it is given.
// Indexed as 1.x's (and Hutt's) code is, so that the two are easily compared.
#[allow(clippy::needless_range_loop)]
fn nelder_mead(objective: &mut dyn FnMut(&mut [f64]) -> f64, start: &[f64]) -> (f64, Vec<f64>) {
    const ALPHA: f64 = 1.0;
    const BETA: f64 = 0.5;
    const GAMMA: f64 = 2.0;
    let n = start.len();
    let nf = n as f64;
    let mut v = vec![vec![0.0; n]; n + 1];
    let mut f = vec![0.0; n + 1];
    let mut vr = vec![0.0; n];
    let mut ve = vec![0.0; n];
    let mut vc = vec![0.0; n];
    let mut vm = vec![0.0; n];
    let scale = 1.0;
    let pn = scale * ((nf + 1.0).sqrt() - 1.0 + nf) / (nf * 2f64.sqrt());
    let qn = scale * ((nf + 1.0).sqrt() - 1.0) / (nf * 2f64.sqrt());
    v[0].copy_from_slice(start);
    for i in 1..=n {
        for j in 0..n {
            v[i][j] = (if i - 1 == j { pn } else { qn }) + start[j];
        }
    }
    for j in 0..=n {
        f[j] = objective(&mut v[j]);
    }
    for _ in 0..MAX_ITERATIONS {
        let (mut vg, mut vs) = (0, 0);
        for i in 0..=n {
            if f[i] > f[vg] {
                vg = i;
            }
            if f[i] < f[vs] {
                vs = i;
            }
        }
        let mut vh = vs;
        for i in 0..=n {
            if f[i] > f[vh] && f[i] < f[vg] {
                vh = i;
            }
        }
        for i in 0..n {
            let mut cent = 0.0;
            for (m, vertex) in v.iter().enumerate() {
                if m != vg {
                    cent += vertex[i];
                }
            }
            vm[i] = cent / nf;
        }
        for i in 0..n {
            vr[i] = vm[i] + ALPHA * (vm[i] - v[vg][i]);
        }
        let fr = objective(&mut vr);
        if fr < f[vh] && fr >= f[vs] {
            v[vg].copy_from_slice(&vr);
            f[vg] = fr;
        }
        if fr < f[vs] {
            for i in 0..n {
                ve[i] = vm[i] + GAMMA * (vr[i] - vm[i]);
            }
            let fe = objective(&mut ve);
            if fe < fr {
                v[vg].copy_from_slice(&ve);
                f[vg] = fe;
            } else {
                v[vg].copy_from_slice(&vr);
                f[vg] = fr;
            }
        }
        if fr >= f[vh] {
            if fr < f[vg] && fr >= f[vh] {
                for i in 0..n {
                    vc[i] = vm[i] + BETA * (vr[i] - vm[i]);
                }
            } else {
                for i in 0..n {
                    vc[i] = vm[i] - BETA * (vm[i] - v[vg][i]);
                }
            }
            let fc = objective(&mut vc);
            if fc < f[vg] {
                v[vg].copy_from_slice(&vc);
                f[vg] = fc;
            } else {
                // Shrink every vertex halfway towards the best one.
                for row in 0..=n {
                    if row != vs {
                        for i in 0..n {
                            v[row][i] = v[vs][i] + (v[row][i] - v[vs][i]) / 2.0;
                        }
                    }
                }
                f[vg] = objective(&mut v[vg]);
                f[vh] = objective(&mut v[vh]);
            }
        }
        let favg = f.iter().sum::<f64>() / (nf + 1.0);
        let mut s = 0.0;
        for &fi in &f {
            s += go_pow(fi - favg, 2.0) / nf;
        }
        if s.sqrt() < EPSILON {
            break;
        }
    }
    let mut vs = 0;
    for i in 0..=n {
        if f[i] < f[vs] {
            vs = i;
        }
    }
    let parameters = v[vs].clone();
    let min = objective(&mut v[vs]);
    (min, parameters)
}

/// Go's `math.Pow` for the integral exponents used here (repeated squaring of the
/// mantissa, the exponent kept apart), so that results round as 1.x's do.
fn go_pow(x: f64, y: f64) -> f64 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if y == 1.0 {
        return x;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    let odd =
        |y: f64| y.fract() == 0.0 && y.abs() < 9.007_199_254_740_992e15 && (y as i64) & 1 == 1;
    if x == 0.0 {
        return match (y < 0.0, odd(y)) {
            (true, true) => f64::INFINITY.copysign(x),
            (true, false) => f64::INFINITY,
            (false, true) => x,
            (false, false) => 0.0,
        };
    }
    if y.is_infinite() {
        return if x == -1.0 {
            1.0
        } else if (x.abs() < 1.0) == (y > 0.0) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if x.is_infinite() {
        if x < 0.0 {
            return go_pow(1.0 / x, -y);
        }
        return if y < 0.0 { 0.0 } else { f64::INFINITY };
    }
    if y == 0.5 {
        return x.sqrt();
    }
    if y == -0.5 {
        return 1.0 / x.sqrt();
    }
    let (mut yi, mut yf) = (y.abs().trunc(), y.abs().fract());
    if yf != 0.0 && x < 0.0 {
        return f64::NAN;
    }
    if yi >= (1u64 << 63) as f64 {
        return if x == -1.0 {
            1.0
        } else if (x.abs() < 1.0) == (y > 0.0) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let mut a1 = 1.0;
    let mut ae: i64 = 0;
    if yf != 0.0 {
        if yf > 0.5 {
            yf -= 1.0;
            yi += 1.0;
        }
        a1 = (yf * x.ln()).exp();
    }
    let (mut x1, mut xe) = frexp(x);
    let mut i = yi as i64;
    while i != 0 {
        if !(-(1 << 12)..=(1 << 12)).contains(&xe) {
            ae += xe;
            break;
        }
        if i & 1 == 1 {
            a1 *= x1;
            ae += xe;
        }
        x1 *= x1;
        xe <<= 1;
        if x1 < 0.5 {
            x1 += x1;
            xe -= 1;
        }
        i >>= 1;
    }
    if y < 0.0 {
        a1 = 1.0 / a1;
        ae = -ae;
    }
    ldexp(a1, ae)
}

/// Go's `math.Frexp`: a mantissa in [0.5, 1) and a power of two.
fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || x.is_infinite() || x.is_nan() {
        return (x, 0);
    }
    let (x, mut exp) = normalize(x);
    let mut bits = x.to_bits();
    exp += ((bits >> 52) & 0x7ff) as i64 - 1022;
    bits &= !(0x7ff << 52);
    bits |= 1022 << 52;
    (f64::from_bits(bits), exp)
}

/// Go's `math.Ldexp`, its underflow and denormal rounding included.
fn ldexp(frac: f64, exp: i64) -> f64 {
    if frac == 0.0 || frac.is_infinite() || frac.is_nan() {
        return frac;
    }
    let (frac, e) = normalize(frac);
    let mut exp = exp + e;
    let mut bits = frac.to_bits();
    exp += ((bits >> 52) & 0x7ff) as i64 - 1023;
    if exp < -1074 {
        return 0f64.copysign(frac);
    }
    if exp > 1023 {
        return if frac < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let mut m = 1.0;
    if exp < -1022 {
        exp += 53;
        m = 1.0 / (1u64 << 53) as f64;
    }
    bits &= !(0x7ff << 52);
    bits |= ((exp + 1023) as u64) << 52;
    m * f64::from_bits(bits)
}

/// A subnormal `x` scaled into the normal range, and the power of two it was scaled by.
fn normalize(x: f64) -> (f64, i64) {
    if x.abs() < f64::MIN_POSITIVE {
        return (x * (1u64 << 52) as f64, -52);
    }
    (x, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_pow_squares_as_multiplication_does() {
        for x in [0.3, 0.7, 0.999, -2.5, 1e-3, 123.456] {
            assert_eq!(go_pow(x, 2.0), x * x);
        }
        assert_eq!(go_pow(0.5, 3.0), 0.125);
        assert_eq!(go_pow(2.0, -2.0), 0.25);
        assert_eq!(go_pow(0.0, 5.0), 0.0);
        assert!(go_pow(f64::NAN, 2.0).is_nan());
    }

    #[test]
    fn a_line_is_forecast_along_its_trend() {
        let hw = HoltWinters {
            h: 3,
            m: 0,
            with_fit: false,
        };
        let points: Vec<(i64, f64)> = (0..10).map(|i| (i * 10, 5.0 + 2.0 * i as f64)).collect();
        let out = hw.forecast(10, &points, &QueryLimits::default()).unwrap();
        assert_eq!(out.iter().map(|p| p.0).collect::<Vec<_>>(), [100, 110, 120]);
        // Damped, but still rising from the last value.
        assert!(out.windows(2).all(|w| w[1].1 > w[0].1), "{out:?}");
    }

    #[test]
    fn too_few_points_forecast_nothing() {
        let hw = HoltWinters {
            h: 3,
            m: 4,
            with_fit: true,
        };
        let limits = QueryLimits::default();
        assert!(hw
            .forecast(10, &[(0, 1.0), (10, 2.0), (20, 3.0)], &limits)
            .unwrap()
            .is_empty());
        assert!(hw.forecast(10, &[(0, 1.0)], &limits).unwrap().is_empty());
    }
}
