# spin-repro: SPIN iterations 0..n as a Snakemake workflow.
#   snakemake --cores all                                    tiny world (config/config.yaml)
#   snakemake --configfile config/paper.yaml --profile profiles/slurm   paper scale on a cluster
#   snakemake --report results/report.html                  the report (tables + figures)
#   snakemake --cores all convergence_map                    the beta x budget sweep (~8 min)
#   snakemake --cores all recipes                            the recipe ablation from both SFT starts (~7 min)
# The Snakefile only includes the stages and names the final targets; see rules/*.smk.

# The default config is used only when no --configfile is given, so paper.yaml is not merged
# on top of the tiny-world keys.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"


# Released checkpoints are imported; otherwise the SFT model is made and SPIN trains the iterates.
if RELEASED:

    include: "rules/released.smk"

else:

    include: "rules/sft.smk"
    include: "rules/generate.smk"
    include: "rules/reference.smk"
    include: "rules/train.smk"
    include: "rules/chains.smk"

    if TINY:

        include: "rules/recipes.smk"


include: "rules/divergence.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


include: "rules/hooks.smk"


report: "report/workflow.rst"


def final_targets():
    targets = [] if RELEASED else [names.train_metrics(names.model_name(t)) for t in ITERATIONS]
    if TINY:
        targets.append(names.divergence_table("exact"))
    if EVAL_ON:
        targets.append(names.EVAL_SCORES)
    targets += [f"results/tables/{name}.csv" for name in TABLES]
    targets += [f"results/figures/{name}.png" for name in FIGURES]
    # The map is its own target (`snakemake convergence_map`, up to ~30 min); once it has run,
    # the default target keeps it, so the report includes its figures.
    if TINY and MAP_DONE:
        targets.append(names.MAP_TABLE)
    if RECIPES_DONE:  # the recipe ablation likewise (`snakemake recipes`)
        targets.append(names.RECIPES_SUMMARY)
    return targets



rule all:
    input:
        final_targets(),
    default_target: True


onsuccess:
    release_finished_checkpoints()
    print_results_summary()


onerror:
    report_stop()
