/*
kind: incremental
partition_by: file_date              # a run as of D owns the sales of the files of D
reads: day                           # and reads only the cleaned sales of D: a changed sales day recomputes that day alone
tests:
  - not_null: [customer_key, product_key, shop_key, sales_amount, transaction_date]
  - relationships: {column: customer_key, to: dw.dim_customer.customer_key}
  - relationships: {column: product_key, to: dw.dim_product.product_key}
  - relationships: {column: shop_key, to: dw.dim_shop.shop_key}
*/
-- Each sale gets the customer version valid at its transaction date (a sale before a move belongs to the old
-- city's row). A sale dated before the customer's first version takes that first version.
WITH day_sales AS (
    SELECT * FROM staging.stg_sales WHERE file_date = {{ as_of }}
),
first_version AS (
    SELECT d.customer_id, min(d.valid_from) AS valid_from
    FROM dw.dim_customer d
    WHERE d.customer_id IN (SELECT customer_id FROM day_sales)
    GROUP BY d.customer_id
)
SELECT
    s.source_file,
    s.source_row,
    COALESCE(v.customer_key, f.customer_key) AS customer_key,
    s.customer_id,
    p.product_key,
    sh.shop_key,
    s.sales_amount,
    s.transaction_date,
    s.file_date
FROM day_sales s
LEFT JOIN dw.dim_customer v
       ON v.customer_id = s.customer_id
      AND v.valid_from <= s.transaction_date
      AND s.transaction_date < COALESCE(v.valid_to, DATE '9999-12-31')   -- no OR: both engines then hash-join on customer_id
LEFT JOIN first_version fv ON fv.customer_id = s.customer_id
LEFT JOIN dw.dim_customer f ON f.customer_id = fv.customer_id AND f.valid_from = fv.valid_from
LEFT JOIN dw.dim_product p ON p.product_name = s.product
LEFT JOIN dw.dim_shop sh ON sh.shop_id = s.shop_id
