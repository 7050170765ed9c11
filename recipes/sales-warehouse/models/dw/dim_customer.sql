/*
kind: snapshot                       # SCD2
unique_key: customer_id
tracked: [name, city]                # a change of either closes the current version and opens a new one
surrogate_key: customer_key
valid_from: valid_from               # the date of the file that brought the version
valid_to: valid_to                   # exclusive; NULL while current
is_current: is_current
absent: keep                         # a customers file may list only new and changed customers
tests:
  - unique: customer_key
  - unique: [customer_id, valid_from]
  - unique: {columns: [customer_id], where: is_current}
  - not_null: [customer_key, customer_id, name, city, valid_from, is_current]
  - accepted_values: {column: is_current, values: [true, false]}
*/
SELECT customer_id, name, city
FROM staging.stg_customer
WHERE file_date = {{ as_of }}
