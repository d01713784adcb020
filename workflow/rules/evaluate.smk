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


rule explain_test:
    input:
        slices=f"{R}/slices/reference",
        folds=f"{R}/folds.parquet",
        labels=f"{R}/ingest/labels.parquet",
        models=expand(f"{R}/scores/{FINAL}/fold{{fold}}/model.pt", fold=FOLDS),
        masks=MASKS,
    output:
        metrics=f"{R}/explain/test/metrics.parquet",
        tables=HEATMAP_TABLES,
        page=report_pages([HEATMAP_PAGE], [HEATMAP_TABLE], "Tables"),
        figure=report_pages([HEATMAP_PNG], [HEATMAP_FIGURE], "Figures"),
    log:
        f"{R}/logs/explain_test.log",
    conda:
        "../envs/gohscore.yaml"
    threads: 4
    resources:
        **MACHINE,
        mem_mb=per_attempt(16000),
        runtime=per_attempt(60),
        gpu=1,
    params:
        masks=masks_option,
        out_dir=folder_of("output", "metrics"),
        table_dir=folder_of("output", "tables"),
    shell:
        "python -m gohscore explain-test --slices {input.slices:q} --folds {input.folds:q}"
        " --labels {input.labels:q} --models {input.models:q} {params.masks}"
        " --device {resources.device} --out-dir {params.out_dir:q}"
        " --table-dir {params.table_dir:q} --figure {output.figure:q} > {log:q} 2>&1"
