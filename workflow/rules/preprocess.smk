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


rule ingest:
    input:
        tables=COHORT_TABLES,
        geometry=all_geometries(),
    output:
        manifest=f"{R}/ingest/manifest.parquet",
        labels=f"{R}/ingest/labels.parquet",
        observers=f"{R}/ingest/observers.parquet",
        patches=f"{R}/ingest/patches.parquet",
    log:
        f"{R}/logs/ingest.log",
    conda:
        "../envs/gohscore.yaml"
    params:
        cohort=cohort_folder,
    shell:
        "python -m gohscore ingest --cohort {params.cohort:q} --geometry {input.geometry:q}"
        " --manifest {output.manifest:q} --labels {output.labels:q}"
        " --observers {output.observers:q} --patches {output.patches:q} > {log:q} 2>&1"
