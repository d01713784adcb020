# Cross-validation folds and the held-out test set, written once and read by every fold.


rule folds:
    input:
        labels=f"{R}/ingest/labels.parquet",
        observers=f"{R}/ingest/observers.parquet",
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
    shell:
        "python -m gohscore folds --labels {input.labels:q} --observers {input.observers:q}"
        " --params-json {params.cfg:q} --seed {params.seed} --out {output:q} > {log:q} 2>&1"
