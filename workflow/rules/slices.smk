# Axial slices from the original scans: at the reference levels (training, CV evaluation)
# and at the predicted levels (the cascade).


rule slices_reference:
    input:
        manifest=ingested("manifest"),
        positions=ingested("positions"),
    output:
        directory(f"{R}/slices/reference"),
    log:
        f"{R}/logs/slices/reference.log",
    conda:
        "../envs/gohscore.yaml"
    resources:
        mem_mb=per_attempt(16000),
        runtime=per_attempt(120),
    params:
        cfg=section("scores", only=SLICE_KEYS),
    shell:
        "python -m gohscore extract-slices --manifest {input.manifest:q} --levels {input.positions:q}"
        " --source reference --params-json {params.cfg:q} --out-dir {output:q} > {log:q} 2>&1"


rule slices_predicted:
    input:
        manifest=ingested("manifest"),
        levels=expand(f"{R}/levels/fold{{fold}}/predictions.parquet", fold=FOLDS)
        + [f"{R}/levels/test/predictions.parquet"],
    output:
        directory(f"{R}/slices/predicted"),
    log:
        f"{R}/logs/slices/predicted.log",
    conda:
        "../envs/gohscore.yaml"
    resources:
        mem_mb=per_attempt(16000),
        runtime=per_attempt(120),
    params:
        cfg=section("scores", only=SLICE_KEYS),
    shell:
        "python -m gohscore extract-slices --manifest {input.manifest:q} --levels {input.levels:q}"
        " --source predicted --params-json {params.cfg:q} --out-dir {output:q} > {log:q} 2>&1"
