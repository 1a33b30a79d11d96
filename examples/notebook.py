"""A notebook-style session: run a scenario from Python and plot from the DataFrame.

    python examples/notebook.py            # writes results/notebook/ and results/notebook/my_plot.png

Each block is one notebook cell.
"""

# %% run a scenario given as a dict (a YAML path works too); reruns resume finished points
import os

import linksim

scenario = {
    "name": "notebook",
    "seed": 0,
    "device": "cpu",
    "data": {"source": "embedded", "size": 32, "limit": 4},
    "channel": {"kind": "ofdm", "cp": 4, "data_symbols": 4, "paths": 4, "draws": 2},
    "sweep": {"csnr_db": [0, 5, 10, 15], "cbr": ["1/24"], "channel.estimator": ["perfect", "ls"]},
    "methods": [{"name": "deepjscc", "kind": "jscc", "model": "embedded"}],
}
res = linksim.run(scenario, output=os.environ.get("NOTEBOOK_OUTPUT", "results/notebook"))
print(res)

# %% one row per image x draw x point; the summary has means and 95 % half-widths (n = images x draws)
rows, summary = res.rows, res.summary
print(summary[["method", "channel", "csnr_db", "n", "psnr", "psnr_ci95"]].to_string(index=False))

# %% your own figure from the DataFrame: perfect CSI vs LS estimates, paired per image and draw
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(4.5, 3), layout="constrained")
for channel, g in summary.groupby("channel"):
    ax.errorbar(g["csnr_db"], g["psnr"], yerr=g["psnr_ci95"], marker="o", capsize=3, label=channel)
gain = rows.pivot_table(index=["csnr_db", "image", "draw"], columns="channel.estimator", values="psnr")
ax.set_xlabel("CSNR [dB]")
ax.set_ylabel("PSNR [dB]")
ax.legend(title="DeepJSCC over", fontsize=8)
fig.savefig(res.dir / "my_plot.png", dpi=150)
print("perfect - LS [dB] per CSNR:", (gain["perfect"] - gain["ls"]).groupby("csnr_db").mean().round(2).to_dict())
print("figures linksim made:", [p.name for p in res.figures if p.suffix == ".png"])
