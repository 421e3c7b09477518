# spin-repro: SPIN iterations 0..n as a Snakemake workflow.
#   snakemake --cores all                                    tiny world (config/config.yaml)
#   snakemake --configfile config/paper.yaml --profile profiles/slurm   paper scale on a cluster
#   snakemake --report results/report.html                  the report (tables + figures)
#   snakemake --cores all convergence_map                    the beta x budget sweep (~8 min)
#   snakemake --cores all recipes                            the recipe ablation from both SFT starts (~25 min)
#   snakemake --cores all long_horizon                       10 iterations of one recipe: where they settle
#   snakemake --cores all data_size                          SPIN from SFT models on 500..32000 rows, and fresh rows
#   snakemake --cores all capacity                           SPIN from SFT models of three widths
# The Snakefile only includes the stages and names the final targets; see rules/*.smk.

# The default config is used only when no --configfile is given, so paper.yaml is not merged
# on top of the tiny-world keys.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/assets.smk"
include: "rules/data.smk"


# Released checkpoints are imported; otherwise the SFT model is made and SPIN trains the iterates.
if RELEASED:

    include: "rules/released.smk"

else:

    # Tiny world: a SPIN chain, its SFT model first, is one job (rules/spin_chain.smk); paper scale:
    # one job per stage.
    if TINY:

        include: "rules/spin_chain.smk"
        include: "rules/recipes.smk"
        include: "rules/studies.smk"

    else:

        include: "rules/sft.smk"
        include: "rules/generate.smk"
        include: "rules/reference.smk"
        include: "rules/train.smk"


include: "rules/divergence.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


include: "rules/hooks.smk"


report: "report/workflow.rst"


FINAL_TARGETS = names.final_targets(
    ITERATIONS, TINY, not RELEASED, EVAL_ON, TABLES, FIGURES, MAP_DONE, RECIPES_DONE, STUDIES_DONE
)


rule all:
    input:
        FINAL_TARGETS,
    default_target: True


# Before any job: an lm-eval harness its jobs' environment lacks stops the run now, not after the
# training (a dry run only warns: rules/evaluate.smk).
onstart:
    stop_on_harness_problems()


onsuccess:
    release_finished_checkpoints()
    print_results_summary()


onerror:
    report_stop()
