# The 2D score network: one model per ablation and fold, CV predictions at the reference
# levels, and the fold ensemble on the test set at the predicted levels.


rule train_scores:
    input:
        slices=f"{R}/slices/reference",
        labels=f"{R}/ingest/labels.parquet",
        folds=f"{R}/folds.parquet",
        patches=f"{R}/ingest/patches.parquet",
    output:
        model=f"{R}/scores/{{ablation}}/fold{{fold}}/model.pt",
        card=f"{R}/scores/{{ablation}}/fold{{fold}}/model.json",
        history=f"{R}/scores/{{ablation}}/fold{{fold}}/history.parquet",
        draws=f"{R}/scores/{{ablation}}/fold{{fold}}/draws.parquet",
    log:
        f"{R}/logs/scores/train_{{ablation}}_fold{{fold}}.log",
    conda:
        "../envs/gohscore.yaml"
    threads: 4
    resources:
        **MACHINE,
        mem_mb=per_attempt(32000),
        runtime=per_attempt(1440),
        gpu=1,
    params:
        cfg=section("scores", only=SCORE_TRAINING_KEYS),
        seed=SEED,
    shell:
        "python -m gohscore train-scores --fold {wildcards.fold} --ablation {wildcards.ablation}"
        " --slices {input.slices:q} --labels {input.labels:q} --folds {input.folds:q}"
        " --patches {input.patches:q} --params-json {params.cfg:q} --seed {params.seed}"
        " --model {output.model:q} --card {output.card:q} --history {output.history:q}"
        " --draws {output.draws:q} --device {resources.device} --amp {resources.amp}"
        " --deterministic {resources.deterministic} > {log:q} 2>&1"


rule predict_scores_cv:
    input:
        model=f"{R}/scores/{{ablation}}/fold{{fold}}/model.pt",
        slices=f"{R}/slices/reference",
        labels=f"{R}/ingest/labels.parquet",
        folds=f"{R}/folds.parquet",
    output:
        f"{R}/scores/{{ablation}}/fold{{fold}}/predictions.parquet",
    log:
        f"{R}/logs/scores/predict_{{ablation}}_fold{{fold}}.log",
    conda:
        "../envs/gohscore.yaml"
    threads: 4
    resources:
        **MACHINE,
        mem_mb=per_attempt(16000),
        runtime=per_attempt(60),
        gpu=1,
    shell:
        "python -m gohscore predict-scores --models {input.model:q} --slices {input.slices:q}"
        " --folds {input.folds:q} --set cv --fold {wildcards.fold}"
        " --ablation {wildcards.ablation} --source reference --labels {input.labels:q}"
        " --device {resources.device} --out {output:q} > {log:q} 2>&1"


rule predict_scores_test:
    input:
        models=score_models,
        slices=f"{R}/slices/predicted",
        labels=f"{R}/ingest/labels.parquet",
        folds=f"{R}/folds.parquet",
    output:
        f"{R}/test/{{ablation}}/predictions.parquet",
    log:
        f"{R}/logs/scores/predict_{{ablation}}_test.log",
    conda:
        "../envs/gohscore.yaml"
    threads: 4
    resources:
        **MACHINE,
        mem_mb=per_attempt(16000),
        runtime=per_attempt(60),
        gpu=1,
    shell:
        "python -m gohscore predict-scores --models {input.models:q} --slices {input.slices:q}"
        " --folds {input.folds:q} --set test --ablation {wildcards.ablation}"
        " --source predicted --labels {input.labels:q} --device {resources.device}"
        " --out {output:q} > {log:q} 2>&1"
