"""The benchmark's national questions answered by DuckDB from the same raw rows the hub
imported: the wide monthly CSVs (a correction file's row replaces the report's row), the
registry the hub loaded (exported by pingan-bench as code,level) and the village populations.

Usage: python3 queries.py PARAMS.json  ->  JSON on stdout: load time, per query its timings (ms)
and its answer, in the shapes pingan-bench compares with the hub's.
"""

import json
import sys
import time

import duckdb


def timed(con, sql, runs):
    times, rows = [], None
    for _ in range(runs):
        t = time.perf_counter()
        rows = con.execute(sql).fetchall()
        times.append((time.perf_counter() - t) * 1000.0)
    return times, rows


def main():
    p = json.load(open(sys.argv[1]))
    runs = p["runs"]
    metrics = p["metrics"]
    con = duckdb.connect()
    t0 = time.perf_counter()
    cols = ", ".join(f'"{m}" BIGINT' for m in metrics)
    types = "{'area': 'VARCHAR', 'period': 'VARCHAR', " + ", ".join(
        f"'{m}': 'BIGINT'" for m in metrics) + "}"

    def csvs(files):
        return "[" + ", ".join(f"'{f}'" for f in files) + "]"

    con.execute(f"CREATE TABLE reports AS SELECT * FROM read_csv({csvs(p['reports'])}, header=true, columns={types})")
    con.execute(f"CREATE TABLE corrections AS SELECT * FROM read_csv({csvs(p['corrections'])}, header=true, columns={types})")
    # the current figures: a correction replaces its report
    con.execute("""
        CREATE TABLE cur AS
        SELECT * FROM corrections
        UNION ALL
        SELECT r.* FROM reports r ANTI JOIN corrections c ON r.area = c.area AND r.period = c.period
    """)
    con.execute(f"CREATE TABLE registry AS SELECT * FROM read_csv('{p['registry']}', header=true, columns={{'code': 'VARCHAR', 'level': 'VARCHAR'}})")
    con.execute(f"CREATE TABLE population AS SELECT * FROM read_csv('{p['population']}', header=true, columns={{'code': 'VARCHAR', 'year': 'INTEGER', 'population': 'BIGINT'}})")
    load_ms = (time.perf_counter() - t0) * 1000.0
    raw_rows = con.execute("SELECT (SELECT count(*) FROM reports) + (SELECT count(*) FROM corrections)").fetchone()[0]
    out = {"load_ms": load_ms, "raw_rows": raw_rows, "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
           "version": duckdb.__version__, "queries": {}}
    # the same rows (every report and correction) in a DuckDB database file: its size beside
    # the hub's store
    if p.get("file"):
        import os
        if os.path.exists(p["file"]):
            os.remove(p["file"])
        con.execute(f"ATTACH '{p['file']}' AS disk")
        con.execute("CREATE TABLE disk.reports AS SELECT * FROM reports")
        con.execute("CREATE TABLE disk.corrections AS SELECT * FROM corrections")
        con.execute("DETACH disk")
        out["file_bytes"] = os.path.getsize(p["file"])
        os.remove(p["file"])

    # 1. a province's rollup for a month: every metric's total over the subtree
    q = p["rollup"]
    sums = ", ".join(f'sum("{m}")' for m in metrics)
    times, rows = timed(con, f"SELECT {sums} FROM cur WHERE period = '{q['period']}' AND starts_with(area, '{q['area']}')", runs)
    out["queries"]["rollup"] = {"times": times, "answer": {m: v for m, v in zip(metrics, rows[0])}}

    # 2. every township in the country ranked on a rate per 10,000 over a range of months
    q = p["ranking"]
    sql = f"""
        WITH num AS (
            SELECT left(area, 9) AS township, sum("{q['numerator']}") AS n
            FROM cur WHERE length(area) >= 9 AND period IN ({", ".join(f"'{m}'" for m in q['months'])})
            GROUP BY 1),
        pop AS (
            SELECT left(code, 9) AS township, sum(population) AS d
            FROM population WHERE year = {q['year']} GROUP BY 1),
        t AS (
            SELECT r.code, num.n, pop.d, CASE WHEN pop.d > 0 AND num.n IS NOT NULL THEN num.n / pop.d * {q['factor']} END AS rate
            FROM registry r LEFT JOIN num ON num.township = r.code LEFT JOIN pop ON pop.township = r.code
            WHERE r.level = 'township')
        SELECT code, rate, CASE WHEN rate IS NOT NULL THEN rank() OVER (ORDER BY rate DESC NULLS LAST) END AS rank
        FROM t ORDER BY rate DESC NULLS LAST, code
    """
    times, rows = timed(con, sql, runs)
    out["queries"]["ranking"] = {"times": times, "answer": [[c, r, k] for c, r, k in rows]}

    # 2b. every village of one province ranked on a rate per 10,000 for a month
    q = p["province_villages"]
    sql = f"""
        WITH pop AS (SELECT code, population AS d FROM population WHERE year = {q['year']}),
        t AS (
            SELECT r.code, CASE WHEN pop.d > 0 AND c."{q['numerator']}" IS NOT NULL
                                THEN c."{q['numerator']}" / pop.d * {q['factor']} END AS rate
            FROM registry r
            LEFT JOIN cur c ON c.area = r.code AND c.period = '{q['period']}'
            LEFT JOIN pop ON pop.code = r.code
            WHERE r.level = 'village' AND starts_with(r.code, '{q['area']}'))
        SELECT code, rate, CASE WHEN rate IS NOT NULL THEN rank() OVER (ORDER BY rate DESC NULLS LAST) END AS rank
        FROM t ORDER BY rate DESC NULLS LAST, code
    """
    times, rows = timed(con, sql, runs)
    out["queries"]["province_villages"] = {"times": times, "answer": [[c, r, k] for c, r, k in rows]}

    # 3. every village of one county, a month and the same month a year earlier (同比)
    q = p["villages"]
    m = q["metric"]
    sql = f"""
        SELECT r.code, now."{m}" AS value, before."{m}" AS base,
               CASE WHEN before."{m}" <> 0 THEN (now."{m}" - before."{m}") * 100.0 / before."{m}" END AS yoy_pct
        FROM registry r
        LEFT JOIN cur now ON now.area = r.code AND now.period = '{q['period']}'
        LEFT JOIN cur before ON before.area = r.code AND before.period = '{q['year_earlier']}'
        WHERE r.level = 'village' AND starts_with(r.code, '{q['area']}')
        ORDER BY r.code
    """
    times, rows = timed(con, sql, runs)
    out["queries"]["villages"] = {"times": times, "answer": [[c, v, b, y] for c, v, b, y in rows]}

    # 4. completeness of a province: expected reporters, received, and who is missing
    q = p["completeness"]
    sql = f"""
        SELECT r.code, c.area IS NOT NULL AS received
        FROM registry r LEFT JOIN (SELECT area FROM cur WHERE period = '{q['period']}') c ON c.area = r.code
        WHERE r.level IN ('county', 'township', 'village') AND starts_with(r.code, '{q['area']}')
    """
    sql = f"""
        WITH e AS ({sql})
        SELECT count(*) AS expected, count(*) FILTER (WHERE received) AS received,
               list(code ORDER BY code) FILTER (WHERE NOT received) AS missing
        FROM e
    """
    times, rows = timed(con, sql, runs)
    expected, received, missing = rows[0]
    out["queries"]["completeness"] = {"times": times, "answer": {
        "expected": expected, "received": received, "missing": missing or []}}

    # 5. every county of the country: each month's sum over its subtree, and the month a year
    # earlier's (同比), over the trend's months
    q = p["county_trend"]
    m = q["metric"]
    months = ", ".join(f"('{now}', '{before}')" for now, before in q["months"])
    wanted = ", ".join(f"'{x}'" for pair in q["months"] for x in pair)
    sql = f"""
        WITH months(period, before) AS (VALUES {months}),
        s AS (
            SELECT left(area, 6) AS county, period, sum("{m}") AS v
            FROM cur WHERE length(area) >= 6 AND period IN ({wanted})
            GROUP BY 1, 2)
        SELECT r.code, months.period, now.v, earlier.v
        FROM registry r CROSS JOIN months
        LEFT JOIN s now ON now.county = r.code AND now.period = months.period
        LEFT JOIN s earlier ON earlier.county = r.code AND earlier.period = months.before
        WHERE r.level = 'county'
        ORDER BY r.code, months.period
    """
    times, rows = timed(con, sql, runs)
    out["queries"]["county_trend"] = {"times": times, "answer": [[c, p_, v, b] for c, p_, v, b in rows]}

    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
