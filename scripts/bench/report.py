"""Turns results.json into table.md and a chart (gnuplot: chart.svg, chart.png), and publishes
them into the repository's results/bench/ and README."""

import os
import shutil
import statistics
import subprocess

SHORT = {
    "mount_cold": "mount cold", "mount_warm": "mount warm", "mount_10x": "mount 10x base",
    "umount": "umount+gc", "find_cold": "find cold", "find_warm": "find warm",
    "read_cold": "read all cold", "read_warm": "read all warm", "large_cold": "big file cold",
    "large_warm": "big file warm", "compile_cold": "tsc cold", "compile_warm": "tsc warm",
    "pnpm_cold": "pnpm cold", "pnpm_second": "pnpm 2nd project", "extract": "extract",
    "delete": "delete", "append_cold": "append cold", "append_warm": "append warm",
    "randw_cold": "4K writes cold", "randw_warm": "4K writes warm", "jobs4": "4 jobs",
    "promote": "promote", "promote_cp": "cp -a of the layer",
    **{f"depth{n}_{t}": f"{n} gen{'s' if n > 1 else ''} {t}" for n in (1, 8, 32)
       for t in ("cold", "warm")},
}
README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"


def median_of(values):
    ok = [v for v in values or [] if v is not None]
    return statistics.median(ok) if ok else None


def medians(result):
    return {c["key"]: {cell["key"]: median_of(result["samples"].get(c["key"], {}).get(cell["key"]))
                       for cell in result["cells"]}
            for c in result["contenders"]}


def fmt_value(v, unit):
    if unit == "count":
        return f"{v:.0f}"
    if unit == "B":
        return f"{v:.0f} B"
    if unit == "%":
        return f"{v:.0f} %"
    if unit == "bytes":
        if v >= 1 << 30:
            return f"{v / (1 << 30):.2f} GiB"
        return f"{v / (1 << 20):.1f} MiB"
    if v < 0.1:
        return f"{v * 1000:.1f} ms"
    return f"{v:.2f} s" if v < 100 else f"{v:.0f} s"


def fmt_ratio(v, ref):
    if v is None or not ref:
        return "–"
    r = v / ref
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def table(result):
    med = medians(result)
    cons = result["contenders"]
    keys = [c["key"] for c in cons]
    lines = ["| workload | " + " | ".join(c["label"] for c in cons) + " |",
             "|---|" + "---:|" * len(cons)]
    for cell in result["cells"]:
        k, unit = cell["key"], cell["unit"]
        kern = med.get("overlay", {}).get(k)
        fuse = med.get("fuse-overlayfs", {}).get(k)
        row = []
        for c in cons:
            samples = result["samples"].get(c["key"], {}).get(k)
            v = med[c["key"]][k]
            if not samples or (not c["has_mount"] and k.startswith(("mount", "umount"))):
                row.append("—")
                continue
            failed = sum(1 for s in samples if s is None)
            if v is None:
                row.append("failed")
                continue
            text = fmt_value(v, unit)
            if kern or fuse:
                text += f"<br>{fmt_ratio(v, kern)} · {fmt_ratio(v, fuse)}"
            ref = cell.get("ref")
            if ref:
                ref_v = median_of(result["samples"].get(c["key"], {}).get(ref))
                if ref_v:
                    text += f"<br>{fmt_ratio(v, ref_v)} {SHORT.get(ref, ref)}"
            if failed:
                text += f"<br>({failed} of {len(samples)} failed)"
            row.append(text)
        lines.append(f"| {cell['label']} | " + " | ".join(row) + " |")
    del keys
    return "\n".join(lines)


def header(result):
    m, d, v = result["machine"], result["data"], result["versions"]
    w = result["workloads"]
    date = result["started"].replace("T", " ").replace("+00:00", " UTC")
    out = [
        f"Run {date} on {m['host']}: {m['cpu']}, {m['cores']} cores, "
        f"{m['memory'] / (1 << 30):.0f} GiB, {m['distro']}, Linux {m['kernel']}, data on "
        f"{m['filesystem']}. Mode `{result['mode']}`, median of {result['runs']} run(s), "
        f"{result['minutes']} minutes in all.",
        "",
        f"Data: pnpm {v['pnpm']} store and an installed project from the lockfile in "
        f"`scripts/bench/project{'-quick' if result['mode'] == 'quick' else ''}`: "
        f"{d['packages']} packages, {d['entries']} entries, {d['files']} files, "
        f"{d['bytes'] / (1 << 20):.0f} MiB of distinct content; {w['nlarge']} × "
        f"{w['large_mib']} MiB files for appends and one {w['big_mib']} MiB file for "
        f"{w['random_writes']} random 4 KiB writes; {d['small_files']} small files to extract; "
        f"a 10x base of {d['base10x_entries']} entries for mount latency.",
        "",
        "Each cell: the median, then its ratio to kernel overlayfs · to fuse-overlayfs measured in "
        "the same run (lower is faster); the promote and stack-depth rows also give their ratio "
        "to the row named after it, for the same contender. Versions: " +
        ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".",
    ]
    rt = result.get("roundtrip") or {}
    if rt.get("before") and rt.get("after"):
        b, a = rt["before"], rt["after"]
        out += ["", "One FUSE request (`scripts/bench/roundtrip.sh`, a getxattr the daemon answers "
                "from memory) before and after the runs, µs: daemon where the scheduler puts it "
                f"{b['free']:.0f} / {a['free']:.0f}, on the caller's CPU {b['same_cpu']:.0f} / "
                f"{a['same_cpu']:.0f}, on the other CPU {b['other_cpus']:.0f} / "
                f"{a['other_cpus']:.0f}; the same call on kernel overlayfs {b['overlay']:.1f} / "
                f"{a['overlay']:.1f}. Rows made of requests follow the first figure "
                "(docs/performance.md)."]
    if "promote" in d:
        p = d["promote"]
        out += ["", f"Promotion: a job mounts a pnpm-store view of that store and adds what "
                f"`pnpm install` of `scripts/bench/project-promote` ({p['lockfile_packages']} "
                f"packages, {p['new_packages']} of them new to the store) wrote to a copy of it: "
                f"{p['files']} new files and the grown "
                f"index.db, {p['bytes'] / (1 << 20):.1f} MiB; `jobfs promote` of that job, "
                "then a job that installs the same packages offline from the new generation."]
    if "depth" in d:
        s = d["depth"]
        out += ["", f"Stack depth: the store ({s['entries']} entries) split into "
                f"{', '.join(map(str, s['depths']))} layers, each generation holding "
                f"1/{s['shares']} of the content files and the index, the bottom layer the rest; "
                "the same layers for every contender."]
    checks = result["base_check"]
    if checks:
        bad = {k: val for k, val in checks.items() if val != "unchanged"}
        out += ["", "Base manifest after every contender: " +
                ("unchanged for all." if not bad else
                 "; ".join(f"**{k}: {val}**" for k, val in bad.items()))]
    if result["skipped"]:
        out += ["", "Skipped: " + "; ".join(f"{k} ({why})" for k, why in
                                            result["skipped"].items())]
    if result["errors"]:
        out += ["", "Failures:"]
        for k, errs in result["errors"].items():
            for e in errs:
                out.append(f"- {k}: {e}")
    return "\n".join(out)


def chart(result, out):
    """Grouped bars: each timed cell as a ratio to kernel overlayfs, log scale."""
    med = medians(result)
    if "overlay" not in med or not shutil.which("gnuplot"):
        return False
    cons = [c for c in result["contenders"] if c["key"] != "overlay"]
    rows = []
    for cell in result["cells"]:
        k = cell["key"]
        ref = med["overlay"].get(k)
        if cell["unit"] != "s" or not ref:
            continue
        vals = []
        for c in cons:
            v = med[c["key"]].get(k)
            if v is None or (not c["has_mount"] and k.startswith(("mount", "umount"))):
                vals.append("?")
            else:
                vals.append(f"{v / ref:.4f}")
        rows.append(f'"{SHORT.get(k, k)}"\t' + "\t".join(vals))
    dat = os.path.join(out, "chart.dat")
    with open(dat, "w") as f:
        f.write("cell\t" + "\t".join(f'"{c["label"]}"' for c in cons) + "\n")
        f.write("\n".join(rows) + "\n")
    plots = ", ".join(f"'chart.dat' using {i + 2}{':xtic(1)' if i == 0 else ''} title columnhead"
                      for i in range(len(cons)))
    title = (f"jobfs benchmark, {result['started'][:10]}, {result['machine']['cores']} cores: "
             "time relative to kernel overlayfs (= 1, log scale; lower is faster)")
    common = f"""
set datafile missing "?"
set datafile separator "\\t"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y 2
set grid ytics
set xtics rotate by -35 scale 0 font ",9"
set key top left horizontal
set title "{title}"
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "black"
plot {plots}
"""
    for term, name in (("svg size 1400,620 dynamic font 'sans,11' background '#ffffff'",
                        "chart.svg"),
                       ("pngcairo size 1400,620 font 'sans,10'", "chart.png")):
        script = f"set terminal {term}\nset output '{name}'\n{common}"
        p = subprocess.run(["gnuplot"], input=script, text=True, cwd=out,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            print(f"bench: gnuplot failed for {name}: {p.stderr.strip()}")
            return False
    return True


def write(result, out):
    have_chart = chart(result, out)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(header(result) + "\n\n" + table(result) + "\n")
        if have_chart:
            f.write("\n![jobfs benchmark chart](chart.svg)\n")


def publish(out, root):
    """results/bench/ gets this run; README's block between the bench markers shows it."""
    dest = os.path.join(root, "results", "bench")
    os.makedirs(dest, exist_ok=True)
    for name in ("results.json", "table.md", "chart.svg", "chart.png", "chart.dat"):
        src = os.path.join(out, name)
        if os.path.exists(src):
            shutil.copy2(src, os.path.join(dest, name))
    readme = os.path.join(root, "README.md")
    with open(readme) as f:
        text = f.read()
    if README_BEGIN not in text or README_END not in text:
        raise SystemExit(f"bench: README.md has no {README_BEGIN} ... {README_END} block")
    with open(os.path.join(dest, "table.md")) as f:
        body = f.read().replace("](chart.svg)", "](results/bench/chart.svg)")
    a = text.index(README_BEGIN) + len(README_BEGIN)
    b = text.index(README_END)
    with open(readme + ".tmp", "w") as f:
        f.write(text[:a] + "\n" + body + text[b:])
    os.replace(readme + ".tmp", readme)
