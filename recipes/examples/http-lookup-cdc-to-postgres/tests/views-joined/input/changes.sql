UPDATE products SET category = 'lighting' WHERE product_id = 2;
DELETE FROM products WHERE product_id = 3;
