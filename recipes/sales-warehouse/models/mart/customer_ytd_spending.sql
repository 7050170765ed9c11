/*
kind: incremental
partition_by: as_of_date             # one set of rows per as-of date; rerunning a date replaces its rows
tests:
  - unique: [customer_id, year, as_of_date]
  - not_null: [customer_id, year, ytd_spending]
*/
-- Per customer and year with sales: the amount spent from 1 January to the as-of date (a past year: the whole year).
SELECT
    f.customer_id,
    CAST(EXTRACT(YEAR FROM f.transaction_date) AS INTEGER) AS year,
    CAST(SUM(f.sales_amount) AS DECIMAL(18,2)) AS ytd_spending,
    {{ as_of }} AS as_of_date
FROM dw.fact_sales f
WHERE f.transaction_date <= {{ as_of }}
  AND f.file_date <= {{ as_of }}
GROUP BY f.customer_id, CAST(EXTRACT(YEAR FROM f.transaction_date) AS INTEGER)
