/*
kind: incremental                    # keyed merge, insert only: a product keeps its key forever
unique_key: product_name
surrogate_key: product_key
update_existing: false
rewind_by: first_seen
tests:
  - unique: product_key
  - unique: product_name
*/
SELECT product AS product_name, {{ as_of }} AS first_seen
FROM staging.stg_sales
WHERE file_date = {{ as_of }}
GROUP BY product
