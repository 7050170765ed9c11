/*
kind: incremental
partition_by: reference_date         # one row per customer and reference date
tests:
  - unique: [customer_id, reference_date]
  - not_null: [customer_id, reference_date]
*/
-- Every customer known on the reference date; NULL days for a customer who never bought.
SELECT
    c.customer_id,
    {{ as_of }} AS reference_date,
    CAST({{ as_of }} - max(f.transaction_date) AS INTEGER) AS days_since_last_purchase
FROM (SELECT DISTINCT customer_id FROM dw.dim_customer WHERE valid_from <= {{ as_of }}) c
LEFT JOIN dw.fact_sales f
       ON f.customer_id = c.customer_id
      AND f.transaction_date <= {{ as_of }}
      AND f.file_date <= {{ as_of }}
GROUP BY c.customer_id
