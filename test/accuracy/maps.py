#!/usr/bin/env python3
"""Score-map checks of the accuracy suite, independent of tme's code (numpy/scipy/mrcfile only).

faces CASE_DIR SCORES_MRC [--top N]
    On a pure-noise lamella: local maxima of the best-score map (3x3x3 neighbourhood) above a common threshold,
    per voxel, within half a template box of a face versus the interior. The threshold is set so that N maxima
    lie above it in the whole volume (default 1000: ~hundreds in each region, so the counts mean something).
    Only voxels whose whole 3x3x3 neighbourhood lies in the volume can be maxima: on the outermost plane a voxel
    has fewer neighbours to beat, which would inflate the face count even for a perfectly stationary map.
    "Faces" are the six faces of the volume and the edges of a zero-filled border (the data region's faces).
diff A_MRC B_MRC
    How far two best-score maps differ (tiled vs untiled search of the same data).
"""
import argparse
import json
import sys

import mrcfile
import numpy as np
from scipy import ndimage


def read(path):
    with mrcfile.open(path, permissive=True) as m:
        return np.asarray(m.data, dtype=np.float64)


def faces(case_dir, scores_path, top):
    meta = json.load(open(f"{case_dir}/case.json"))
    s = read(scores_path)
    half = int(meta["templateBox"]) // 2
    lo, hi = meta["validRegion"]["lo"], meta["validRegion"]["hi"]
    shape = s.shape
    finite = np.isfinite(s)
    s_f = np.where(finite, s, -np.inf)
    is_max = (s_f == ndimage.maximum_filter(s_f, size=3, mode="nearest")) & finite
    inner = np.zeros(shape, bool)
    inner[1:-1, 1:-1, 1:-1] = True
    # Distance of every voxel from the nearest face of the data region, per axis and overall.
    idx = np.indices(shape)
    dz = np.minimum(idx[0] - lo[0], hi[0] - 1 - idx[0])
    dy = np.minimum(idx[1] - lo[1], hi[1] - 1 - idx[1])
    dx = np.minimum(idx[2] - lo[2], hi[2] - 1 - idx[2])
    dist = np.minimum(np.minimum(dz, dy), dx)
    in_data = dist >= 0
    # Voxels next to the data region's edge (a zero border) also lack a full neighbourhood of data.
    candidates = is_max & inner & (dist >= 1)
    face = in_data & (dist < half) & (dist >= 1)
    interior = in_data & (dist >= half)
    zface = in_data & (dz < half) & (dist >= 1)
    values = np.sort(s_f[candidates & in_data])[::-1]
    if len(values) == 0:
        return {"error": "no local maxima"}
    k = min(top, len(values))
    threshold = float(values[k - 1])
    above = candidates & (s_f >= threshold)

    def density(region):
        n = int(region.sum())
        c = int((above & region).sum())
        return c, n, (c / n if n else None)

    cf, nf, df = density(face)
    ci, ni, di = density(interior)
    cz, nz, dzd = density(zface)
    out = {
        "threshold": threshold, "maximaAbove": int(above.sum()),
        "faceMaxima": cf, "faceVoxels": nf, "interiorMaxima": ci, "interiorVoxels": ni,
        "zFaceMaxima": cz, "zFaceVoxels": nz,
        "ratio": (df / di) if di else None,
        "ratioZFaces": (dzd / di) if di else None,
        # Poisson standard error of the ratio, from the two counts.
        "ratioStdErr": (df / di) * np.sqrt(1 / max(cf, 1) + 1 / max(ci, 1)) if di and df else None,
        "maxScore": float(np.nanmax(s)), "maxScoreFace": float(np.nanmax(np.where(face, s, -np.inf))),
        "maxScoreInterior": float(np.nanmax(np.where(interior, s, -np.inf))),
        "scoresFinite": bool(finite.all()),
    }
    if (~in_data).any():
        out["maxScoreZeroBorder"] = float(np.nanmax(np.where(~in_data, s, -np.inf)))
    # The same comparison for the voxels above the threshold (no neighbourhood involved).
    ef = float((s_f[face] >= threshold).mean()) if nf else None
    ei = float((s_f[interior] >= threshold).mean()) if ni else None
    out["exceedanceRatio"] = (ef / ei) if ef is not None and ei else None
    return out


def picks_density(case_dir, picks_path):
    """tme's own picks (called at a generous false-alarm threshold on a noise-only map) per voxel, within half a
    template box of a face of the data region ÷ in the interior: the density of noise peaks above tme's false-alarm
    threshold, which is what a user gets."""
    meta = json.load(open(f"{case_dir}/case.json"))
    half = int(meta["templateBox"]) // 2
    lo, hi = meta["validRegion"]["lo"], meta["validRegion"]["hi"]
    shape = meta["shape"]
    idx = np.indices(shape)
    dist = np.minimum.reduce([np.minimum(idx[a] - lo[a], hi[a] - 1 - idx[a]) for a in range(3)])
    face = (dist >= 0) & (dist < half)
    interior = dist >= half
    p = np.loadtxt(picks_path, skiprows=1, ndmin=2)
    counts = {"face": 0, "interior": 0}
    for row in p:
        x, y, z = (int(round(v)) for v in row[:3])
        if face[z, y, x]:
            counts["face"] += 1
        elif interior[z, y, x]:
            counts["interior"] += 1
    nf, ni = int(face.sum()), int(interior.sum())
    df, di = counts["face"] / nf, counts["interior"] / ni
    ratio = df / di if di else None
    return {"picks": int(len(p)), "facePicks": counts["face"], "interiorPicks": counts["interior"], "picksRatio": ratio,
            "picksRatioStdErr": ratio * np.sqrt(1 / max(counts["face"], 1) + 1 / max(counts["interior"], 1)) if ratio else None}


def diff(a_path, b_path):
    a, b = read(a_path), read(b_path)
    if a.shape != b.shape:
        return {"error": f"shapes differ {a.shape} {b.shape}"}
    d = np.abs(a - b)
    scale = float(np.nanstd(a)) or 1.0
    where = np.unravel_index(int(np.nanargmax(d)), d.shape)
    return {
        "maxAbsDiff": float(np.nanmax(d)), "maxAbsDiffOverStd": float(np.nanmax(d)) / scale,
        "fractionDiffering": float((d > 1e-4 * scale).mean()), "worstVoxelZYX": [int(v) for v in where],
        "maxA": float(np.nanmax(a)), "maxB": float(np.nanmax(b)),
    }


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("faces")
    f.add_argument("case_dir")
    f.add_argument("scores")
    f.add_argument("--top", type=int, default=1000)
    pk = sub.add_parser("picks")
    pk.add_argument("case_dir")
    pk.add_argument("picks")
    d = sub.add_parser("diff")
    d.add_argument("a")
    d.add_argument("b")
    a = ap.parse_args()
    if a.cmd == "faces":
        out = faces(a.case_dir, a.scores, a.top)
    elif a.cmd == "picks":
        out = picks_density(a.case_dir, a.picks)
    else:
        out = diff(a.a, a.b)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
