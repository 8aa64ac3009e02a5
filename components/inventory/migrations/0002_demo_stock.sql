-- Stock of the demo catalog's products 1-12 (catalog's migrations show the same
-- numbers as `available` until the first inventory.changed).
INSERT INTO stock (product_id, available, reserved) VALUES
    (1, 25, 0), (2, 12, 0), (3, 7, 0), (4, 0, 0), (5, 18, 0), (6, 30, 0),
    (7, 40, 0), (8, 60, 0), (9, 35, 0), (10, 80, 0), (11, 0, 0), (12, 45, 0);
