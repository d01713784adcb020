# Cross-validation folds and the held-out test set, written once and read by every fold.
# The labels and observers are ancient(): the folds are drawn again when the patient list or the
# folds: settings change, never because a label was edited (delete folds.parquet to redraw them).
# They come through the checkpoint `ingest`: Snakemake would not look at this rule's own params
# while the job that writes its ancient inputs is still to run.


rule folds:
    input:
        labels=ingested("labels", ancient),
        observers=ingested("observers", ancient),
        previous=PREVIOUS_FOLDS,
    output:
        f"{R}/folds.parquet",
    log:
        f"{R}/logs/folds.log",
    conda:
        "../envs/gohscore.yaml"
    params:
        cfg=section("folds"),
        seed=SEED,
        patients=PATIENT_LIST,
    shell:
        "python -m gohscore folds --labels {input.labels:q} --observers {input.observers:q}"
        " --params-json {params.cfg:q} --seed {params.seed} --out {output:q} > {log:q} 2>&1"
