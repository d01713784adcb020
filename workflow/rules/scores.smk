# The 2D score network: one model per ablation and fold, CV predictions at the reference
# levels, and the fold ensemble on the test set at the predicted levels. Training and CV
# prediction read their split table (patients, scores and slice digests) and the slices from
# slices/reference.


rule train_scores:
    input:
        split=split_input("scores", "fold{fold}_train"),
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
        cfg=lambda wildcards: section(
            "scores", only=SCORE_TRAINING_KEYS, without=unread_keys(wildcards.ablation)
        ),
        seed=SEED,
        slices=in_results("slices/reference"),
    shell:
        "python -m gohscore train-scores --fold {wildcards.fold} --ablation {wildcards.ablation}"
        " --slices {params.slices:q} --labels {input.split:q} --folds {input.split:q}"
        " --patches {input.patches:q} --params-json {params.cfg:q} --seed {params.seed}"
        " --model {output.model:q} --card {output.card:q} --history {output.history:q}"
        " --draws {output.draws:q} --device {resources.device} --amp {resources.amp}"
        " --deterministic {resources.deterministic} > {log:q} 2>&1"


rule predict_scores_cv:
    input:
        model=f"{R}/scores/{{ablation}}/fold{{fold}}/model.pt",
        split=split_input("scores", "fold{fold}_eval"),
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
    params:
        slices=in_results("slices/reference"),
    shell:
        "python -m gohscore predict-scores --models {input.model:q} --slices {params.slices:q}"
        " --folds {input.split:q} --set cv --fold {wildcards.fold}"
        " --ablation {wildcards.ablation} --source reference --labels {input.split:q}"
        " --device {resources.device} --out {output:q} > {log:q} 2>&1"


rule predict_scores_test:
    input:
        models=score_models,
        slices=f"{R}/slices/predicted",
        split=split_input("scores", "test"),
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
        " --folds {input.split:q} --set test --ablation {wildcards.ablation}"
        " --source predicted --labels {input.split:q} --device {resources.device}"
        " --out {output:q} > {log:q} 2>&1"
