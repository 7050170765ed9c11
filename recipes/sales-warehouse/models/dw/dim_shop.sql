/*
kind: incremental
unique_key: shop_id
surrogate_key: shop_key
update_existing: false
rewind_by: first_seen
tests:
  - unique: shop_key
  - unique: shop_id
*/
SELECT shop_id, {{ as_of }} AS first_seen
FROM staging.stg_sales
WHERE file_date = {{ as_of }}
GROUP BY shop_id
