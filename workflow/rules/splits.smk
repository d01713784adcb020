# One table per network job: its patients, its task's labels and the digests of the files it
# loads (gohscore.splits). A checkpoint, so that the jobs reading a table whose content did not
# change are not rerun.


checkpoint splits:
    input:
        manifest=f"{R}/ingest/manifest.parquet",
        labels=f"{R}/ingest/labels.parquet",
        folds=f"{R}/folds.parquet",
        volumes=all_volumes(),
        slices=f"{R}/slices/reference",
    output:
        SPLIT_TABLES,
    log:
        f"{R}/logs/splits.log",
    conda:
        "../envs/gohscore.yaml"
    params:
        n_folds=len(FOLDS),
        volumes=folder_of("input", "volumes"),
        out=splits_folder,
    shell:
        "python -m gohscore splits --manifest {input.manifest:q} --labels {input.labels:q}"
        " --folds {input.folds:q} --n-folds {params.n_folds} --volumes {params.volumes:q}"
        " --slices {input.slices:q} --out-dir {params.out:q} > {log:q} 2>&1"
