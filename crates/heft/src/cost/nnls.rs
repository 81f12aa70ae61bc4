//! Non-negative least squares (Lawson and Hanson's active-set method), small and dense.
//!
//! Calibration has tens of points and tens of features, so plain `Vec<Vec<f64>>` and a
//! Householder QR per step are all it needs.

/// Solves `min ‖A x − b‖₂` subject to `x ≥ 0`. `a` is row-major, `m` rows of `n` columns.
///
/// Columns are scaled to unit norm before solving, so features counted in the tens of thousands
/// (endpoints × workers) and features counted once (the baseline) weigh the same. All-zero
/// columns get 0.
pub(crate) fn nnls(a: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let m = a.len();
    let n = a.first().map_or(0, Vec::len);
    let norms: Vec<f64> = (0..n)
        .map(|j| (0..m).map(|i| a[i][j] * a[i][j]).sum::<f64>().sqrt())
        .collect();
    let scaled: Vec<Vec<f64>> = a
        .iter()
        .map(|row| {
            row.iter()
                .zip(&norms)
                .map(|(v, s)| if *s > 0.0 { v / s } else { 0.0 })
                .collect()
        })
        .collect();
    let y = solve_scaled(&scaled, b, n);
    y.iter()
        .zip(&norms)
        .map(|(v, s)| if *s > 0.0 { v / s } else { 0.0 })
        .collect()
}

fn residual(a: &[Vec<f64>], b: &[f64], x: &[f64]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(row, bi)| bi - row.iter().zip(x).map(|(r, v)| r * v).sum::<f64>())
        .collect()
}

fn gradient(a: &[Vec<f64>], r: &[f64], n: usize) -> Vec<f64> {
    (0..n)
        .map(|j| a.iter().zip(r).map(|(row, ri)| row[j] * ri).sum())
        .collect()
}

fn solve_scaled(a: &[Vec<f64>], b: &[f64], n: usize) -> Vec<f64> {
    let tol = 1e-10 * b.iter().map(|v| v.abs()).fold(1.0, f64::max);
    let mut x = vec![0.0; n];
    let mut passive = vec![false; n];
    let usable: Vec<bool> = (0..n).map(|j| a.iter().any(|row| row[j] != 0.0)).collect();
    for _ in 0..3 * n.max(1) {
        let w = gradient(a, &residual(a, b, &x), n);
        let next = (0..n)
            .filter(|&j| !passive[j] && usable[j] && w[j] > tol)
            .max_by(|&i, &j| w[i].total_cmp(&w[j]));
        let Some(t) = next else { break };
        passive[t] = true;
        for _ in 0..3 * n.max(1) {
            let cols: Vec<usize> = (0..n).filter(|&j| passive[j]).collect();
            let sub = least_squares(a, b, &cols);
            let mut s = vec![0.0; n];
            for (k, &j) in cols.iter().enumerate() {
                s[j] = sub[k];
            }
            if cols.iter().all(|&j| s[j] > 0.0) {
                x = s;
                break;
            }
            let alpha = cols
                .iter()
                .filter(|&&j| s[j] <= 0.0)
                .map(|&j| x[j] / (x[j] - s[j]))
                .fold(f64::INFINITY, f64::min);
            for j in 0..n {
                x[j] += alpha * (s[j] - x[j]);
            }
            for &j in &cols {
                if x[j] <= 1e-12 {
                    x[j] = 0.0;
                    passive[j] = false;
                }
            }
        }
    }
    x
}

/// Least squares on the columns `cols` of `a`, by Householder QR; a column that adds nothing
/// (rank deficiency) gets 0.
// Matrix code: indices read as the algorithm is written.
#[allow(clippy::needless_range_loop)]
fn least_squares(a: &[Vec<f64>], b: &[f64], cols: &[usize]) -> Vec<f64> {
    let m = a.len();
    let k = cols.len();
    let mut r: Vec<Vec<f64>> = a
        .iter()
        .map(|row| cols.iter().map(|&j| row[j]).collect())
        .collect();
    let mut qtb = b.to_vec();
    for c in 0..k.min(m) {
        let norm = (c..m).map(|i| r[i][c] * r[i][c]).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        let alpha = if r[c][c] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = (c..m).map(|i| r[i][c]).collect();
        v[0] -= alpha;
        let vv: f64 = v.iter().map(|x| x * x).sum();
        if vv == 0.0 {
            continue;
        }
        for j in c..k {
            let dot: f64 = (c..m).map(|i| v[i - c] * r[i][j]).sum();
            let f = 2.0 * dot / vv;
            for i in c..m {
                r[i][j] -= f * v[i - c];
            }
        }
        let dot: f64 = (c..m).map(|i| v[i - c] * qtb[i]).sum();
        let f = 2.0 * dot / vv;
        for i in c..m {
            qtb[i] -= f * v[i - c];
        }
    }
    let scale = (0..k.min(m)).map(|i| r[i][i].abs()).fold(0.0, f64::max);
    let mut x = vec![0.0; k];
    for i in (0..k.min(m)).rev() {
        if r[i][i].abs() <= 1e-9 * scale {
            continue;
        }
        let s: f64 = (i + 1..k).map(|j| r[i][j] * x[j]).sum();
        x[i] = (qtb[i] - s) / r[i][i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_non_negative_coefficients() {
        // b = 3·x0 + 0·x1 + 5·x2, exactly.
        let a = vec![
            vec![1.0, 2.0, 0.0],
            vec![2.0, 0.0, 1.0],
            vec![0.0, 1.0, 3.0],
            vec![1.0, 1.0, 1.0],
        ];
        let b: Vec<f64> = a.iter().map(|r| 3.0 * r[0] + 5.0 * r[2]).collect();
        let x = nnls(&a, &b);
        assert!((x[0] - 3.0).abs() < 1e-9 && x[1].abs() < 1e-9 && (x[2] - 5.0).abs() < 1e-9);
    }

    #[test]
    fn clamps_what_least_squares_would_make_negative() {
        // Unconstrained, x1 would be negative; NNLS sets it to 0 and refits x0.
        let a = vec![vec![1.0, 1.0], vec![1.0, 2.0], vec![1.0, 3.0]];
        let b = vec![3.0, 2.0, 1.0];
        let x = nnls(&a, &b);
        assert_eq!(x[1], 0.0);
        assert!((x[0] - 2.0).abs() < 1e-9, "{x:?}");
    }

    #[test]
    fn zero_columns_get_zero() {
        let a = vec![vec![1.0, 0.0], vec![2.0, 0.0]];
        assert_eq!(nnls(&a, &[2.0, 4.0]), vec![2.0, 0.0]);
    }
}
