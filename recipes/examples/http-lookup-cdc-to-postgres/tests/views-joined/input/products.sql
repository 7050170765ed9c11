CREATE TABLE products (product_id integer PRIMARY KEY, name text NOT NULL, category text);
INSERT INTO products VALUES (1, 'Kettle', 'kitchen'), (2, 'Lamp', NULL), (3, 'Desk', 'office');
