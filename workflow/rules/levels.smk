# The 3D level network: one model per fold, predictions on its own fold and on the test set.


rule train_levels:
    input:
        volumes=all_volumes(),
        manifest=f"{R}/ingest/manifest.parquet",
        labels=f"{R}/ingest/labels.parquet",
        folds=f"{R}/folds.parquet",
    output:
        model=f"{R}/levels/fold{{fold}}/model.pt",
        card=f"{R}/levels/fold{{fold}}/model.json",
        history=f"{R}/levels/fold{{fold}}/history.parquet",
    log:
        f"{R}/logs/levels/train_fold{{fold}}.log",
    conda:
        "../envs/gohscore.yaml"
    threads: 4
    resources:
        **MACHINE,
        mem_mb=per_attempt(32000),
        runtime=per_attempt(1440),
        gpu=1,
    params:
        cfg=section("levels", only=LEVEL_TRAINING_KEYS),
        seed=SEED,
        volumes=folder_of("input", "volumes"),
    shell:
        "python -m gohscore train-levels --fold {wildcards.fold} --volumes {params.volumes:q}"
        " --manifest {input.manifest:q} --labels {input.labels:q} --folds {input.folds:q}"
        " --params-json {params.cfg:q} --seed {params.seed} --model {output.model:q}"
        " --card {output.card:q} --history {output.history:q}"
        " --device {resources.device} --amp {resources.amp}"
        " --deterministic {resources.deterministic} > {log:q} 2>&1"


rule predict_levels_cv:
    input:
        model=f"{R}/levels/fold{{fold}}/model.pt",
        volumes=all_volumes(),
        manifest=f"{R}/ingest/manifest.parquet",
        labels=f"{R}/ingest/labels.parquet",
        folds=f"{R}/folds.parquet",
    output:
        f"{R}/levels/fold{{fold}}/predictions.parquet",
    log:
        f"{R}/logs/levels/predict_fold{{fold}}.log",
    conda:
        "../envs/gohscore.yaml"
    threads: 4
    resources:
        **MACHINE,
        mem_mb=per_attempt(16000),
        runtime=per_attempt(60),
        gpu=1,
    params:
        volumes=folder_of("input", "volumes"),
        stride=WINDOW_STRIDE,
    shell:
        "python -m gohscore predict-levels --models {input.model:q} --volumes {params.volumes:q}"
        " --manifest {input.manifest:q} --folds {input.folds:q} --set cv --fold {wildcards.fold}"
        " --labels {input.labels:q} --window-stride {params.stride}"
        " --device {resources.device} --amp {resources.amp} --out {output:q} > {log:q} 2>&1"


rule predict_levels_test:
    input:
        models=level_models(),
        volumes=all_volumes(),
        manifest=f"{R}/ingest/manifest.parquet",
        labels=f"{R}/ingest/labels.parquet",
        folds=f"{R}/folds.parquet",
    output:
        f"{R}/levels/test/predictions.parquet",
    log:
        f"{R}/logs/levels/predict_test.log",
    conda:
        "../envs/gohscore.yaml"
    threads: 4
    resources:
        **MACHINE,
        mem_mb=per_attempt(16000),
        runtime=per_attempt(60),
        gpu=1,
    params:
        volumes=folder_of("input", "volumes"),
        stride=WINDOW_STRIDE,
    shell:
        "python -m gohscore predict-levels --models {input.models:q} --volumes {params.volumes:q}"
        " --manifest {input.manifest:q} --folds {input.folds:q} --set test"
        " --labels {input.labels:q} --window-stride {params.stride}"
        " --device {resources.device} --amp {resources.amp} --out {output:q} > {log:q} 2>&1"
