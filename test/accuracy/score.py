#!/usr/bin/env python3
"""Scores tme's picks against the truth of a synthetic lamella, independently of tme's code.

Reads the case's truth.tsv (x y z and the row-major active rotation matrix, xyz frame) and case.json (shape,
template box, region that holds data), and a pyTME orientations TSV (x y z euler_x euler_y euler_z score ...;
scipy Rotation.from_euler("zyz", [euler_x, euler_y, euler_z], degrees=True) is the rotation). Picks are matched to
particles one-to-one by scipy's linear_sum_assignment on centre distance, pairs farther than the tolerance dropped.

Usage: score.py CASE_DIR PICKS_TSV [--scores scores.mrc] [--tolerance VOXELS]   (prints one JSON object)
"""
import argparse
import json
import math
import os
import sys

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.transform import Rotation

FLIP_DEGREES = 90.0


def read_table(path):
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    if not lines:
        return [], np.zeros((0, 0))
    header = lines[0].split("\t")
    rows = [[float(v) for v in l.split("\t")[: len(header)]] for l in lines[1:]]
    return header, np.array(rows, dtype=float).reshape(len(rows), len(header))


def pseudo_symmetry_axis(model_path):
    """The B pentamer's axis of an AB5 toxin (1TII), in the template's xyz frame: the normal of the plane through
    the centroids of the five chains of equal length. Read with gemmi, not tme."""
    import gemmi

    st = gemmi.read_structure(model_path)
    chains = []
    for ch in st[0]:
        xyz = np.array([[a.pos.x, a.pos.y, a.pos.z] for r in ch for a in r if not r.is_water()])
        if len(xyz):
            chains.append((ch.name, len(xyz), xyz.mean(axis=0)))
    by_len = {}
    for name, n, c in chains:
        by_len.setdefault(n // 50, []).append(c)
    five = [v for v in by_len.values() if len(v) == 5]
    if not five:
        return None
    c = np.array(five[0])
    _, _, vt = np.linalg.svd(c - c.mean(axis=0))
    return vt[2] / np.linalg.norm(vt[2])


def angle_deg(r):
    return float(np.degrees(r.magnitude()))


def distance_to_boundary(p, lo, hi):
    """Per axis (z, y, x): distance of a centre from the nearest face of the region that holds data."""
    return [min(p[a] - lo[a], hi[a] - 1 - p[a]) for a in range(3)]


def summarise(values):
    if not values:
        return None
    return float(np.median(values))


def score(case_dir, picks_path, scores_path=None, tolerance=None):
    meta = json.load(open(os.path.join(case_dir, "case.json")))
    box = int(meta["templateBox"])
    half = box // 2
    lo, hi = meta["validRegion"]["lo"], meta["validRegion"]["hi"]
    tol = float(tolerance) if tolerance is not None else max(2.0, 0.2 * box)
    th, truth = read_table(os.path.join(case_dir, "truth.tsv"))
    ph, picks = read_table(picks_path)
    n_truth = truth.shape[0] if truth.size else 0
    n_picks = picks.shape[0] if picks.size else 0
    tpos = truth[:, [2, 1, 0]] if n_truth else np.zeros((0, 3))  # z, y, x
    ppos = picks[:, [ph.index("z"), ph.index("y"), ph.index("x")]] if n_picks else np.zeros((0, 3))
    pscore = picks[:, ph.index("score")] if n_picks else np.zeros(0)

    pairs = []
    if n_truth and n_picks:
        d = np.linalg.norm(tpos[:, None, :] - ppos[None, :, :], axis=2)
        big = 1e6
        cost = np.where(d <= tol, d, big)
        ti, pi = linear_sum_assignment(cost)
        pairs = [(int(t), int(p), float(d[t, p])) for t, p in zip(ti, pi) if d[t, p] <= tol]

    # Which particles are at a face: centre within half a template box of a face of the region holding data
    # (the volume's faces, and the edge of a zero-filled border). z_face: of a z face (a lamella's surface).
    face = np.zeros(n_truth, bool)
    z_face = np.zeros(n_truth, bool)
    for i in range(n_truth):
        dist = distance_to_boundary(tpos[i], lo, hi)
        face[i] = min(dist) < half
        z_face[i] = dist[0] < half

    sym_axis = None
    if meta["molecule"] == "1tii":
        try:
            sym_axis = pseudo_symmetry_axis(meta["model"])
        except Exception as e:  # gemmi missing: report raw errors only
            print(f"score.py: no pseudo-symmetry axis ({e})", file=sys.stderr)

    angles, sym_angles, pos_err, flips, flips_sym = [], [], [], [], 0
    found = np.zeros(n_truth, bool)
    for t, p, dist in pairs:
        found[t] = True
        pos_err.append(dist)
        rt = Rotation.from_matrix(truth[t, 3:12].reshape(3, 3))
        eu = [picks[p, ph.index("euler_x")], picks[p, ph.index("euler_y")], picks[p, ph.index("euler_z")]]
        rp = Rotation.from_euler("zyz", eu, degrees=True)
        err = angle_deg(rp * rt.inv())
        angles.append(err)
        if sym_axis is not None:
            # The template is nearly unchanged by 72° turns about the pentamer axis (template frame): the truth
            # could as well be rt · S^k.
            best = min(angle_deg(rp * (rt * Rotation.from_rotvec(np.radians(72 * k) * sym_axis)).inv()) for k in range(5))
            sym_angles.append(best)
            if err > FLIP_DEGREES and best <= 30.0:
                flips_sym += 1
        if err > FLIP_DEGREES:
            flips.append(round(err, 1))

    def recall(mask):
        n = int(mask.sum())
        return (float(found[mask].sum()) / n if n else None), n

    matched = len(pairs)
    recall_all = matched / n_truth if n_truth else None
    precision = matched / n_picks if n_picks else None
    f1 = (2 * recall_all * precision / (recall_all + precision)) if recall_all and precision else 0.0
    r_face, n_face = recall(face)
    r_int, n_int = recall(~face)
    r_z, n_z = recall(z_face)
    # Where the false picks are: within one particle diameter of a particle (a displaced or duplicate pick of a
    # real particle) or away from every particle (a false alarm on noise).
    matched_picks = {p for _, p, _ in pairs}
    diameter = 2 * float(meta["particleRadiusVoxels"])
    near = 0
    for p in range(n_picks):
        if p in matched_picks or not n_truth:
            continue
        if np.linalg.norm(tpos - ppos[p], axis=1).min() <= diameter:
            near += 1
    out = {
        "truth": n_truth, "picks": n_picks, "matched": matched, "toleranceVoxels": tol,
        "recall": recall_all, "precision": precision, "f1": f1,
        "recallFaces": r_face, "faceParticles": n_face, "recallInterior": r_int, "interiorParticles": n_int,
        "recallZFaces": r_z, "zFaceParticles": n_z,
        "medianAngle": summarise(angles), "meanAngle": float(np.mean(angles)) if angles else None,
        "flips": len(flips), "flipAngles": sorted(flips),
        "medianPositionError": summarise(pos_err),
        "maxPickScore": float(pscore.max()) if n_picks else None,
        "falsePicks": n_picks - matched, "falsePicksNearParticle": near, "falsePicksAway": n_picks - matched - near,
        "missedFaces": int((face & ~found).sum()), "missedInterior": int((~face & ~found).sum()),
    }
    if sym_axis is not None:
        out["medianAnglePseudoC5"] = summarise(sym_angles)
        out["flipsExplainedByPseudoC5"] = flips_sym
    if scores_path:
        import mrcfile

        with mrcfile.open(scores_path, permissive=True) as m:
            s = np.asarray(m.data, dtype=np.float64)
        out["maxScore"] = float(np.nanmax(s))
        valid = np.zeros(s.shape, bool)
        valid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
        out["maxScoreInData"] = float(np.nanmax(s[valid]))
        if (~valid).any():
            out["maxScoreInZeroBorder"] = float(np.nanmax(s[~valid]))
        out["scoresFinite"] = bool(np.isfinite(s).all())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case_dir")
    ap.add_argument("picks")
    ap.add_argument("--scores")
    ap.add_argument("--tolerance", type=float)
    a = ap.parse_args()
    print(json.dumps(score(a.case_dir, a.picks, a.scores, a.tolerance)))


if __name__ == "__main__":
    main()
