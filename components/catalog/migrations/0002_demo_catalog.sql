-- The demo catalog: category ids 1-4 and product ids 1-12 (components/README.md).
-- `available` matches the stock inventory's migrations seed, until its first
-- inventory.changed.
INSERT INTO categories (id, name, description) VALUES
    (1, 'Laptops', 'Notebooks and ultrabooks for work, study and play'),
    (2, 'Smartphones', 'Unlocked phones with the latest mobile chips'),
    (3, 'Audio', 'Headphones, earbuds and portable speakers'),
    (4, 'Accessories', 'Mice, chargers, storage and everything around the desk');

INSERT INTO products (id, sku, name, description, brand, category_id, price_amount, price_currency, active, available) VALUES
    (1, 'LAP-ZB14', 'ZenBook 14 OLED', '14-inch 2.8K OLED ultrabook, Core Ultra 7, 16 GB RAM, 1 TB SSD', 'Asus', 1, 129900, 'EUR', TRUE, 25),
    (2, 'LAP-MBA13', 'MacBook Air 13 M3', 'Fanless 13.6-inch laptop with the M3 chip, 16 GB unified memory, 512 GB SSD', 'Apple', 1, 134900, 'EUR', TRUE, 12),
    (3, 'LAP-X1C12', 'ThinkPad X1 Carbon Gen 12', 'Business ultrabook of 1.09 kg with a 14-inch 2.8K OLED display and a legendary keyboard', 'Lenovo', 1, 189900, 'EUR', TRUE, 7),
    (4, 'PHN-IP16', 'iPhone 16', '6.1-inch Super Retina XDR display, A18 chip, 128 GB, camera control button', 'Apple', 2, 95900, 'EUR', TRUE, 0),
    (5, 'PHN-GS24', 'Galaxy S24', '6.2-inch Dynamic AMOLED 2X display, 8 GB RAM, 256 GB, triple camera', 'Samsung', 2, 89900, 'EUR', TRUE, 18),
    (6, 'PHN-PX9', 'Pixel 9', '6.3-inch Actua display, Tensor G4, 128 GB, seven years of updates', 'Google', 2, 79900, 'EUR', TRUE, 30),
    (7, 'AUD-XM5', 'WH-1000XM5 Wireless Headphones', 'Over-ear headphones with industry-leading noise cancelling and 30 hours of battery', 'Sony', 3, 37900, 'EUR', TRUE, 40),
    (8, 'AUD-APP2', 'AirPods Pro (2nd generation)', 'In-ear earbuds with active noise cancellation and a USB-C charging case', 'Apple', 3, 27900, 'EUR', TRUE, 60),
    (9, 'AUD-CHG5', 'Charge 5 Bluetooth Speaker', 'Waterproof portable speaker with 20 hours of playtime and a built-in powerbank', 'JBL', 3, 17999, 'EUR', TRUE, 35),
    (10, 'ACC-MXM3S', 'MX Master 3S Mouse', 'Wireless performance mouse with quiet clicks and an 8K DPI sensor', 'Logitech', 4, 10999, 'EUR', TRUE, 80),
    (11, 'ACC-GAN65', 'USB-C 65 W GaN Charger', 'Compact three-port wall charger for laptops, tablets and phones', 'Anker', 4, 4999, 'EUR', TRUE, 0),
    (12, 'ACC-T7SSD', 'T7 Portable SSD 1 TB', 'Pocket-sized USB 3.2 Gen 2 solid-state drive, up to 1050 MB/s', 'Samsung', 4, 12999, 'EUR', TRUE, 45);

INSERT INTO id_sequences (name, last_id) VALUES ('categories', 4), ('products', 12);
