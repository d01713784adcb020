# The embedded default cohort: one synthetic patient per job, then the cohort tables.


rule phantom_patient:
    output:
        scan=directory(f"{R}/phantom/scans/{{patient}}"),
        patches=directory(f"{R}/phantom/patches/{{patient}}"),
        part=f"{R}/phantom/parts/{{patient}}.json",
        masks=f"{R}/phantom/{MASK_DIR}/{{patient}}.npz",
    log:
        f"{R}/logs/phantom/{{patient}}.log",
    wildcard_constraints:
        patient=r"P\d{4}",
    group:
        "patient"
    conda:
        "../envs/gohscore.yaml"
    resources:
        mem_mb=per_attempt(3000),
        runtime=per_attempt(10),
    params:
        # not the cohort's size: growing it keeps the patients already written
        cfg=section("phantom", only=PHANTOM_PATIENT_KEYS),
        seed=SEED,
    shell:
        "python -m gohscore phantom --patient {wildcards.patient} --params-json {params.cfg:q}"
        " --seed {params.seed} --scan-dir {output.scan:q} --patch-dir {output.patches:q}"
        " --part {output.part:q} --masks {output.masks:q} > {log:q} 2>&1"


rule phantom_tables:
    input:
        parts=expand(f"{R}/phantom/parts/{{patient}}.json", patient=PATIENTS),
        patches=expand(f"{R}/phantom/patches/{{patient}}", patient=PATIENTS),
    output:
        labels=f"{R}/phantom/labels.csv",
        observers=f"{R}/phantom/observers.csv",
        patches=f"{R}/phantom/patches/patches.csv",
    log:
        f"{R}/logs/phantom/tables.log",
    conda:
        "../envs/gohscore.yaml"
    params:
        cfg=section("phantom"),
        seed=SEED,
        cohort=folder_of("output"),
    shell:
        "python -m gohscore phantom-tables --parts {input.parts:q} --cohort {params.cohort:q}"
        " --params-json {params.cfg:q} --seed {params.seed} > {log:q} 2>&1"


rule phantom_pairs:
    output:
        directory(f"{R}/followup_pairs"),
    log:
        f"{R}/logs/phantom/pairs.log",
    conda:
        "../envs/gohscore.yaml"
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(60),
    params:
        cfg=json.dumps(FOLLOWUP, sort_keys=True),
        seed=SEED,
    shell:
        "python -m gohscore phantom-pairs --params-json {params.cfg:q} --seed {params.seed}"
        " --out {output:q} > {log:q} 2>&1"
