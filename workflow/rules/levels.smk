# The 3D level network: one model per fold, predictions on its own fold and on the test set.
# Each job reads its split table (the patients, level positions, manifest rows and volume
# digests it uses); the volumes themselves come from the preprocess folder.


rule train_levels:
    input:
        split=split_input("levels", "fold{fold}_train"),
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
        volumes=in_results("preprocess"),
    shell:
        "python -m gohscore train-levels --fold {wildcards.fold} --volumes {params.volumes:q}"
        " --manifest {input.split:q} --labels {input.split:q} --folds {input.split:q}"
        " --params-json {params.cfg:q} --seed {params.seed} --model {output.model:q}"
        " --card {output.card:q} --history {output.history:q}"
        " --device {resources.device} --amp {resources.amp}"
        " --deterministic {resources.deterministic} > {log:q} 2>&1"


rule predict_levels_cv:
    input:
        model=f"{R}/levels/fold{{fold}}/model.pt",
        split=split_input("levels", "fold{fold}_eval"),
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
        volumes=in_results("preprocess"),
        stride=WINDOW_STRIDE,
    shell:
        "python -m gohscore predict-levels --models {input.model:q} --volumes {params.volumes:q}"
        " --manifest {input.split:q} --folds {input.split:q} --set cv --fold {wildcards.fold}"
        " --labels {input.split:q} --window-stride {params.stride}"
        " --device {resources.device} --amp {resources.amp} --out {output:q} > {log:q} 2>&1"


rule predict_levels_test:
    input:
        models=level_models(),
        split=split_input("levels", "test"),
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
        volumes=in_results("preprocess"),
        stride=WINDOW_STRIDE,
    shell:
        "python -m gohscore predict-levels --models {input.models:q} --volumes {params.volumes:q}"
        " --manifest {input.split:q} --folds {input.split:q} --set test"
        " --labels {input.split:q} --window-stride {params.stride}"
        " --device {resources.device} --amp {resources.amp} --out {output:q} > {log:q} 2>&1"
