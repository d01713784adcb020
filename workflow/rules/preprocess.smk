# Each scan onto the level network's grid, then the validated cohort tables.


rule resample:
    input:
        scan=get_scan,
    output:
        volume=f"{R}/preprocess/{{patient}}.npy",
        geometry=f"{R}/preprocess/{{patient}}.json",
    log:
        f"{R}/logs/resample/{{patient}}.log",
    group:
        "patient"
    conda:
        "../envs/gohscore.yaml"
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(10),
    params:
        cfg=section("preprocess"),
    shell:
        "python -m gohscore resample --scan {input.scan:q} --patient {wildcards.patient:q}"
        " --params-json {params.cfg:q} --volume {output.volume:q}"
        " --geometry {output.geometry:q} > {log:q} 2>&1"


# A checkpoint: the rules that take its tables through ingested() are checked again once it has
# run, so an unchanged table (e.g. positions.parquet after a score edit) reruns nothing, and the
# rule folds can take its tables as ancient() (see folds.smk).
checkpoint ingest:
    input:
        tables=COHORT_TABLES,
        geometry=all_geometries(),
    output:
        manifest=f"{R}/ingest/manifest.parquet",
        labels=f"{R}/ingest/labels.parquet",
        observers=f"{R}/ingest/observers.parquet",
        patches=f"{R}/ingest/patches.parquet",
        positions=f"{R}/ingest/positions.parquet",
    log:
        f"{R}/logs/ingest.log",
    conda:
        "../envs/gohscore.yaml"
    params:
        cohort=cohort_folder,
    shell:
        "python -m gohscore ingest --cohort {params.cohort:q} --geometry {input.geometry:q}"
        " --manifest {output.manifest:q} --labels {output.labels:q}"
        " --observers {output.observers:q} --patches {output.patches:q}"
        " --positions {output.positions:q} > {log:q} 2>&1"
