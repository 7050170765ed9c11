/*
kind: view                           # read at query time: each customer's current version
tests:
  - unique: customer_id
*/
SELECT customer_key, customer_id, name, city, valid_from AS since
FROM dw.dim_customer
WHERE is_current
