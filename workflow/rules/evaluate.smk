# The paper's tables (metrics) and figures, from the prediction tables only.


rule tables:
    input:
        levels_cv=expand(f"{R}/levels/fold{{fold}}/predictions.parquet", fold=FOLDS),
        levels_test=f"{R}/levels/test/predictions.parquet",
        scores_cv=expand(
            f"{R}/scores/{{ablation}}/fold{{fold}}/predictions.parquet",
            ablation=ABLATIONS,
            fold=FOLDS,
        ),
        scores_test=expand(
            f"{R}/test/{{ablation}}/predictions.parquet", ablation=ABLATIONS
        ),
        labels=f"{R}/ingest/labels.parquet",
        observers=f"{R}/ingest/observers.parquet",
        folds=f"{R}/folds.parquet",
        draws=DRAWS,
    output:
        data=TABLES,
        pages=report_pages(TABLE_PAGES, TABLE_NAMES, "Tables"),
    log:
        f"{R}/logs/tables.log",
    conda:
        "../envs/gohscore.yaml"
    params:
        final=FINAL,
        cohort_source=config["cohort"]["source"],
        out_dir=folder_of("output"),
    shell:
        "python -m gohscore tables --levels-cv {input.levels_cv:q} --levels-test {input.levels_test:q}"
        " --scores-cv {input.scores_cv:q} --scores-test {input.scores_test:q}"
        " --labels {input.labels:q} --observers {input.observers:q} --folds {input.folds:q}"
        " --final-ablation {params.final} --cohort-source {params.cohort_source}"
        " --draws {input.draws:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule figures:
    input:
        tables=TABLES,
        histories=HISTORIES,
        levels_cv=expand(f"{R}/levels/fold{{fold}}/predictions.parquet", fold=FOLDS),
        scores_test=expand(
            f"{R}/test/{{ablation}}/predictions.parquet", ablation=ABLATIONS
        ),
    output:
        report_pages(FIGURES, FIGURE_NAMES, "Figures"),
    log:
        f"{R}/logs/figures.log",
    conda:
        "../envs/gohscore.yaml"
    params:
        final=FINAL,
        tables=folder_of("input", "tables"),
        out_dir=folder_of("output"),
    shell:
        "python -m gohscore figures --tables {params.tables:q} --levels-cv {input.levels_cv:q}"
        " --scores-test {input.scores_test:q} --histories {input.histories:q}"
        " --final-ablation {params.final}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"
