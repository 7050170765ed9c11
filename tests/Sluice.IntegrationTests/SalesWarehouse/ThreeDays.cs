namespace Sluice.IntegrationTests.SalesWarehouse;

/// <summary>
/// Three days of hand-written exports whose every expected row is known: dirty values, rejects of every kind, a
/// customer who moves twice in three days, one renamed and moved on the same day, an unchanged reload, late sales,
/// and a year boundary for the year-to-date mart.
/// </summary>
internal static class ThreeDays
{
    public static readonly DateOnly Day1 = new(2023, 12, 30);
    public static readonly DateOnly Day2 = new(2023, 12, 31);
    public static readonly DateOnly Day3 = new(2024, 1, 1);

    public static readonly (string Name, string Content)[] Files =
    [
        ("customers_20231230.csv",
            "ID,Name,City\n" +
            "1,Alice Martin,lyon\n" +
            "2,  Bob   Durand ,PARIS\n" +
            "3,\"Dupont, Claire\",saint-étienne\n" +
            "4,Dan Petit,Lille\n" +
            "5,Eve\u0007 Roux,nice\n" +
            ",No Id,Paris\n" +
            "x6,Bad Id,Paris\n" +
            "2,  Bob   Durand ,PARIS\n"),
        ("sales_20231230.csv",
            "CustomerID,Product,SalesAmount,ShopId,TransactionDate\n" +
            "1,Widget,10.50,1,2023-12-30\n" +
            "2,Gadget,\"1,234.50\",2,30/12/2023\n" +
            "3,Widget,5,1,2023-12-29\n" +
            "99,Widget,5,1,2023-12-30\n" +
            "1,Widget,-3,1,2023-12-30\n" +
            "1,Widget,abc,1,2023-12-30\n" +
            "1,Widget,10.50,1,2023-12-30\n"),
        ("customers_20231231.csv",
            "ID,Name,City\n" +
            "1,Alice Martin,Paris\n" +
            "2,Bob Durand,Paris\n" +
            "4,Dan Petit,Lille\n" +
            "3,Claire Dupont,Grenoble\n"),
        ("sales_20231231.csv",
            "CustomerID,Product,SalesAmount,ShopId,TransactionDate\n" +
            "1,Widget,20,1,2023-12-31\n" +
            "1,Gadget,7.25,2,2023-12-30\n" +
            "4,Widget,1,3,2023-12-31\n"),
        ("customers_20240101.csv",
            "ID,Name,City\n" +
            "1,Alice Martin,Marseille\n" +
            "1,Alice Martin,Toulouse\n"),
        ("sales_20240101.csv",
            "CustomerID,Product,SalesAmount,ShopId,TransactionDate\n" +
            "1,Widget,100,1,2024-01-01\n" +
            "2,Gadget,50,2,2023-12-31\n"),
    ];

    /// <summary>dw.dim_customer: customer_key|customer_id|name|city|valid_from|valid_to|is_current.</summary>
    public static readonly string[] DimCustomer =
    [
        "1|1|Alice Martin|Lyon|2023-12-30|2023-12-31|false",
        "2|2|Bob Durand|Paris|2023-12-30|NULL|true",
        "3|3|Dupont, Claire|Saint-Étienne|2023-12-30|2023-12-31|false",
        "4|4|Dan Petit|Lille|2023-12-30|NULL|true",
        "5|5|Eve Roux|Nice|2023-12-30|NULL|true",
        "6|1|Alice Martin|Paris|2023-12-31|2024-01-01|false",
        "7|3|Claire Dupont|Grenoble|2023-12-31|NULL|true",
        "8|1|Alice Martin|Toulouse|2024-01-01|NULL|true",
    ];

    /// <summary>dw.fact_sales: source_file|source_row|customer_key|customer_id|sales_amount|transaction_date.</summary>
    public static readonly string[] Facts =
    [
        "sales_20231230.csv|1|1|1|10.50|2023-12-30",
        "sales_20231230.csv|2|2|2|1234.50|2023-12-30",
        "sales_20231230.csv|3|3|3|5.00|2023-12-29",
        "sales_20231231.csv|1|6|1|20.00|2023-12-31",
        "sales_20231231.csv|2|1|1|7.25|2023-12-30",
        "sales_20231231.csv|3|4|4|1.00|2023-12-31",
        "sales_20240101.csv|1|8|1|100.00|2024-01-01",
        "sales_20240101.csv|2|2|2|50.00|2023-12-31",
    ];

    /// <summary>dw.quarantine: model|source_file|source_row|rule|column_name.</summary>
    public static readonly string[] Quarantine =
    [
        "staging.stg_customer|customers_20231230.csv|6|missing_id|customer_id",
        "staging.stg_customer|customers_20231230.csv|7|invalid_id|customer_id",
        "staging.stg_customer|customers_20231230.csv|8|duplicate_row|NULL",
        "staging.stg_customer|customers_20240101.csv|1|duplicate_id|customer_id",
        "staging.stg_sales|sales_20231230.csv|4|unknown_customer|customer_id",
        "staging.stg_sales|sales_20231230.csv|5|negative_amount|sales_amount",
        "staging.stg_sales|sales_20231230.csv|6|non_numeric_amount|sales_amount",
        "staging.stg_sales|sales_20231230.csv|7|duplicate_row|NULL",
    ];

    /// <summary>mart.customer_ytd_spending: as_of_date|customer_id|year|ytd_spending.</summary>
    public static readonly string[] Ytd =
    [
        "2023-12-30|1|2023|10.50", "2023-12-30|2|2023|1234.50", "2023-12-30|3|2023|5.00",
        "2023-12-31|1|2023|37.75", "2023-12-31|2|2023|1234.50", "2023-12-31|3|2023|5.00", "2023-12-31|4|2023|1.00",
        "2024-01-01|1|2023|37.75", "2024-01-01|1|2024|100.00", "2024-01-01|2|2023|1284.50", "2024-01-01|3|2023|5.00", "2024-01-01|4|2023|1.00",
    ];

    /// <summary>mart.customer_days_since_last_purchase: reference_date|customer_id|days.</summary>
    public static readonly string[] DaysSince =
    [
        "2023-12-30|1|0", "2023-12-30|2|0", "2023-12-30|3|1", "2023-12-30|4|NULL", "2023-12-30|5|NULL",
        "2023-12-31|1|0", "2023-12-31|2|1", "2023-12-31|3|2", "2023-12-31|4|0", "2023-12-31|5|NULL",
        "2024-01-01|1|0", "2024-01-01|2|1", "2024-01-01|3|3", "2024-01-01|4|1", "2024-01-01|5|NULL",
    ];

    public static IEnumerable<(string Name, string Content)> OfDay(DateOnly day) =>
        Files.Where(f => f.Name.Contains(day.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
}
